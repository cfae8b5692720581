using System.Diagnostics.Metrics;
using Klaviyo.Functions.Diagnostics;

namespace Klaviyo.Functions.Ingest;

/// <summary>The ingest's counters, on the relay's meter (<c>Klaviyo.Relay</c>) so they are exported with it.</summary>
internal sealed class IngestMetrics
{
    public const string LoneSurrogatesReplacedName = "klaviyo.relay.ingest.lone_surrogates_replaced";
    public const string BusyName = "klaviyo.relay.ingest.busy";
    public const string AcceptedName = "klaviyo.relay.ingest.accepted";

    private readonly Counter<long> _loneSurrogates;
    private readonly Counter<long> _busy;
    private readonly Counter<long> _accepted;

    public IngestMetrics(IMeterFactory meterFactory)
    {
        var meter = meterFactory.Create(RelayMetrics.MeterName);
        _loneSurrogates = meter.CreateCounter<long>(LoneSurrogatesReplacedName, "{escape}", "Lone UTF-16 surrogate escapes replaced by U+FFFD in ingested requests.");
        _busy = meter.CreateCounter<long>(BusyName, "{request}", "Requests answered 503 by the ingest itself, by reason (body-memory, stopping).");
        _accepted = meter.CreateCounter<long>(AcceptedName, "{event}", "Events answered 202: queued (or a re-sent messageId within the duplicate window).");
    }

    public void LoneSurrogatesReplaced(int count) => _loneSurrogates.Add(count);

    public void Accepted(int count) => _accepted.Add(count);

    public void Busy(string reason) => _busy.Add(1, new KeyValuePair<string, object?>("reason", reason));
}
