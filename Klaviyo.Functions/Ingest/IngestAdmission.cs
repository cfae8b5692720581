using Microsoft.Extensions.Options;

namespace Klaviyo.Functions.Ingest;

/// <summary>
/// What the ingest admits beyond a single request's rules: the bytes of all request bodies held at once
/// (<see cref="IngestOptions.MaxInFlightBodyBytes"/>) and whether the app is stopping. Both are answered 503 with
/// <c>Retry-After</c>, so a sender backs off instead of losing events or a connection being refused.
/// </summary>
internal sealed class IngestAdmission(IOptions<IngestOptions> options)
{
    private long _reserved;
    private volatile bool _stopping;

    /// <summary>Bytes of body buffers currently held by requests being read or decided.</summary>
    public long ReservedBytes => Interlocked.Read(ref _reserved);

    public bool IsStopping => _stopping;

    /// <summary>Called once the host begins to stop: new requests get 503 while in-flight ones finish.</summary>
    public void BeginStopping() => _stopping = true;

    /// <summary>Takes <paramref name="bytes"/> from the shared budget, or nothing when they do not fit. When the caller
    /// already holds <paramref name="heldByCaller"/> bytes and nobody else holds any, it is taken even beyond the budget:
    /// a request alone in the ingest always gets to finish (its parse is bounded by the request's own limits).</summary>
    public bool TryReserve(long bytes, long heldByCaller = -1)
    {
        var limit = options.Value.MaxInFlightBodyBytes;
        while (true)
        {
            var current = Interlocked.Read(ref _reserved);
            var next = current + bytes;
            if (next > limit && current != heldByCaller)
            {
                return false;
            }
            if (Interlocked.CompareExchange(ref _reserved, next, current) == current)
            {
                return true;
            }
        }
    }

    public void Release(long bytes) => Interlocked.Add(ref _reserved, -bytes);
}
