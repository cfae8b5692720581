using System.Diagnostics.Metrics;
using Klaviyo.Functions.Diagnostics;
using Klaviyo.Functions.Ingest;

namespace Klaviyo.Functions.Local;

/// <summary>
/// What the status page shows of the last minutes: events accepted, delivered and dead-lettered per second, and the
/// requests sent to Klaviyo per endpoint with their 429s. Read from the relay's own meter (<c>Klaviyo.Relay</c>), the
/// numbers Azure receives through OpenTelemetry, by a listener scoped to this app's meter factory (another app in the
/// same process is not counted). Per-second buckets in a ring: adding is a lock and an increment, reading is a copy.
/// </summary>
internal sealed class LocalActivity : IDisposable
{
    /// <summary>The window the rates cover, in seconds.</summary>
    public const int WindowSeconds = 300;

    private const int TooManyRequests = 429;

    private readonly MeterListener _listener;
    private readonly TimeProvider _time;
    private readonly Lock _gate = new();
    private readonly SecondRing _accepted, _delivered, _deadLettered;
    private readonly Dictionary<string, EndpointRequests> _klaviyo = new(StringComparer.Ordinal);

    public LocalActivity(IMeterFactory meterFactory, TimeProvider time)
    {
        _time = time;
        _accepted = new SecondRing(WindowSeconds);
        _delivered = new SecondRing(WindowSeconds);
        _deadLettered = new SecondRing(WindowSeconds);
        _listener = new MeterListener
        {
            InstrumentPublished = (instrument, listener) =>
            {
                if (ReferenceEquals(instrument.Meter.Scope, meterFactory) && instrument.Meter.Name == RelayMetrics.MeterName
                    && instrument.Name is IngestMetrics.AcceptedName or RelayMetrics.DeliveredName or RelayMetrics.DeadLetteredName or RelayMetrics.KlaviyoRequestsName)
                {
                    listener.EnableMeasurementEvents(instrument);
                }
            },
        };
        _listener.SetMeasurementEventCallback<long>(OnMeasurement);
        _listener.Start();
    }

    /// <summary>The last <see cref="WindowSeconds"/> seconds, oldest first, ending with the current second.</summary>
    public ActivitySnapshot Snapshot()
    {
        var now = _time.GetUtcNow().ToUnixTimeSeconds();
        lock (_gate)
        {
            return new ActivitySnapshot(
                DateTimeOffset.FromUnixTimeSeconds(now),
                _accepted.Series(now), _delivered.Series(now), _deadLettered.Series(now),
                _accepted.Total, _delivered.Total, _deadLettered.Total,
                _klaviyo.OrderBy(e => e.Key, StringComparer.Ordinal).Select(e => new EndpointRequestCount(e.Key, e.Value.Requests, e.Value.TooManyRequests, e.Value.NoAnswer)).ToList());
        }
    }

    public void Dispose() => _listener.Dispose();

    private void OnMeasurement(Instrument instrument, long value, ReadOnlySpan<KeyValuePair<string, object?>> tags, object? state)
    {
        var second = _time.GetUtcNow().ToUnixTimeSeconds();
        string? endpoint = null;
        int? status = null;
        if (instrument.Name == RelayMetrics.KlaviyoRequestsName)
        {
            foreach (var tag in tags)
            {
                if (tag.Key == "endpoint")
                {
                    endpoint = tag.Value as string;
                }
                else if (tag.Key == "http.response.status_code")
                {
                    status = tag.Value as int?;
                }
            }
        }
        lock (_gate)
        {
            switch (instrument.Name)
            {
                case IngestMetrics.AcceptedName:
                    _accepted.Add(second, value);
                    break;
                case RelayMetrics.DeliveredName:
                    _delivered.Add(second, value);
                    break;
                case RelayMetrics.DeadLetteredName:
                    _deadLettered.Add(second, value);
                    break;
                default:
                    if (!_klaviyo.TryGetValue(endpoint ?? "Unknown", out var counts))
                    {
                        _klaviyo[endpoint ?? "Unknown"] = counts = new EndpointRequests();
                    }
                    counts.Requests += value;
                    counts.TooManyRequests += status == TooManyRequests ? value : 0;
                    counts.NoAnswer += status is null ? value : 0;
                    break;
            }
        }
    }

    private sealed class EndpointRequests
    {
        public long Requests;
        public long TooManyRequests;
        public long NoAnswer;
    }

    /// <summary>One count per second for the last <c>size</c> seconds; a bucket is reset when its second comes round again.</summary>
    private sealed class SecondRing(int size)
    {
        private readonly long[] _counts = new long[size];
        private readonly long[] _seconds = new long[size];

        public long Total { get; private set; }

        public void Add(long second, long value)
        {
            var slot = (int)(second % size);
            if (_seconds[slot] != second)
            {
                _seconds[slot] = second;
                _counts[slot] = 0;
            }
            _counts[slot] += value;
            Total += value;
        }

        public long[] Series(long now)
        {
            var series = new long[size];
            for (var i = 0; i < size; i++)
            {
                var second = now - size + 1 + i;
                var slot = (int)(second % size);
                series[i] = _seconds[slot] == second ? _counts[slot] : 0;
            }
            return series;
        }
    }
}

/// <summary>Requests sent to one Klaviyo endpoint since the relay started: how many Klaviyo answered 429, how many got no answer.</summary>
internal sealed record EndpointRequestCount(string Endpoint, long Requests, long TooManyRequests, long NoAnswer);

/// <summary>Per-second series ending at <paramref name="EndsAt"/> (oldest first) and totals since the relay started.</summary>
internal sealed record ActivitySnapshot(
    DateTimeOffset EndsAt,
    long[] Accepted,
    long[] Delivered,
    long[] DeadLettered,
    long AcceptedTotal,
    long DeliveredTotal,
    long DeadLetteredTotal,
    IReadOnlyList<EndpointRequestCount> Klaviyo);
