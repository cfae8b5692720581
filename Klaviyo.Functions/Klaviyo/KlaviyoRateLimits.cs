using System.Net;
using System.Net.Http.Headers;
using System.Threading.RateLimiting;
using Klaviyo.Functions.Relay;
using Microsoft.Extensions.Options;

namespace Klaviyo.Functions.Klaviyo;

/// <summary>
/// Per-endpoint client-side limits (spec section 8): each instance takes 1/<c>Relay__ExpectedInstanceCount</c> of
/// Klaviyo's published per-account limits, in both the 1 s burst and the 60 s steady window, and a 429 pauses the
/// endpoint for its <c>Retry-After</c>. Klaviyo's own 429 stays the backstop (private keys share one account quota).
/// </summary>
public sealed class KlaviyoRateLimits : IDisposable
{
    /// <summary>Request option carrying the endpoint, so the handler can pick the limiter.</summary>
    public static readonly HttpRequestOptionsKey<KlaviyoEndpoint> EndpointOption = new("Klaviyo.Endpoint");

    /// <summary>Header on the 429 the relay makes up itself when it holds a call back (never sent to Klaviyo).</summary>
    public const string HeldBackHeader = "X-Klaviyo-Relay-Held-Back";

    /// <summary>Klaviyo's 1 s burst window, plus 50 ms of room for transit time.</summary>
    public static readonly TimeSpan BurstWindow = TimeSpan.FromMilliseconds(1050);

    /// <summary>Klaviyo's 60 s steady window, plus 250 ms of room for transit time.</summary>
    public static readonly TimeSpan SteadyWindow = TimeSpan.FromMilliseconds(60_250);

    private readonly Dictionary<KlaviyoEndpoint, RateLimiter> _limiters = [];
    private readonly long[] _pausedUntilTicks = new long[Enum.GetValues<KlaviyoEndpoint>().Length];
    private readonly TimeProvider _time;

    public KlaviyoRateLimits(IOptions<RelayOptions> options, TimeProvider time)
    {
        _time = time;
        foreach (var endpoint in Enum.GetValues<KlaviyoEndpoint>())
        {
            var (perSecond, perMinute) = InstanceShare(endpoint, options.Value.ExpectedInstanceCount);
            // Exact sliding logs, with a little room for the calls' transit times to differ on the way to Klaviyo.
            _limiters[endpoint] = new SlidingLogRateLimiter(perSecond, BurstWindow, perMinute, SteadyWindow, time);
        }
    }

    /// <summary>Klaviyo's published per-account limits, revision 2026-07-15 (<c>x-klaviyo-ratelimit</c>).</summary>
    public static (int PerSecond, int PerMinute) PublishedLimit(KlaviyoEndpoint endpoint) => endpoint switch
    {
        KlaviyoEndpoint.CreateEvent => (350, 3500),
        KlaviyoEndpoint.ProfileImport => (75, 750),
        KlaviyoEndpoint.SubscribeProfiles => (75, 750),
        KlaviyoEndpoint.AddProfilesToList => (10, 150),
        KlaviyoEndpoint.BulkCreateEvents => (10, 150),
        KlaviyoEndpoint.BulkImportProfiles => (10, 150),
        KlaviyoEndpoint.GetImportJob => (10, 150),
        KlaviyoEndpoint.GetImportErrors => (10, 150),
        _ => throw new ArgumentOutOfRangeException(nameof(endpoint)),
    };

    /// <summary>One instance's share; never below one call per window so a large instance count cannot stop the relay.</summary>
    public static (int PerSecond, int PerMinute) InstanceShare(KlaviyoEndpoint endpoint, int expectedInstances)
    {
        var (perSecond, perMinute) = PublishedLimit(endpoint);
        var n = Math.Max(1, expectedInstances);
        return (Math.Max(1, perSecond / n), Math.Max(1, perMinute / n));
    }

    public ValueTask<RateLimitLease> AcquireAsync(KlaviyoEndpoint endpoint, CancellationToken cancellationToken) =>
        _limiters[endpoint].AcquireAsync(1, cancellationToken);

    /// <summary>Holds every call to <paramref name="endpoint"/> back for <paramref name="duration"/> (after a 429).</summary>
    public void Pause(KlaviyoEndpoint endpoint, TimeSpan duration)
    {
        var until = (_time.GetUtcNow() + duration).UtcTicks;
        ref var slot = ref _pausedUntilTicks[(int)endpoint];
        long current;
        do
        {
            current = Volatile.Read(ref slot);
            if (current >= until)
            {
                return;
            }
        }
        while (Interlocked.CompareExchange(ref slot, until, current) != current);
    }

    /// <summary>How long <paramref name="endpoint"/> is still paused (zero when it is not).</summary>
    public TimeSpan PausedFor(KlaviyoEndpoint endpoint)
    {
        var remaining = Volatile.Read(ref _pausedUntilTicks[(int)endpoint]) - _time.GetUtcNow().UtcTicks;
        return remaining > 0 ? TimeSpan.FromTicks(remaining) : TimeSpan.Zero;
    }

    public void Dispose()
    {
        foreach (var limiter in _limiters.Values)
        {
            limiter.Dispose();
        }
    }
}

/// <summary>
/// Sits inside the retry pipeline, so every try takes a permit. A call the limiter will not allow now is answered
/// with a local 429 + Retry-After, which the retry strategy and the processor treat exactly like Klaviyo's own.
/// </summary>
internal sealed class KlaviyoRateLimitHandler(KlaviyoRateLimits limits, TimeProvider time) : DelegatingHandler
{
    /// <summary>A pause this short is waited out in the call rather than answered with a held-back 429.</summary>
    internal static readonly TimeSpan ShortPause = TimeSpan.FromSeconds(1);

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        if (!request.Options.TryGetValue(KlaviyoRateLimits.EndpointOption, out var endpoint))
        {
            return await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
        }

        var paused = limits.PausedFor(endpoint);
        if (paused > ShortPause)
        {
            return HeldBack(request, paused, "paused after Klaviyo answered 429");
        }
        if (paused > TimeSpan.Zero)
        {
            // The tail of a pause is waited out here: answering it with a held-back 429 of a few milliseconds lets the
            // retry come back before the pause ends (timers and clocks differ by that much) and spends the retries.
            await Task.Delay(paused, time, cancellationToken).ConfigureAwait(false);
        }

        using var lease = await limits.AcquireAsync(endpoint, cancellationToken).ConfigureAwait(false);
        if (!lease.IsAcquired)
        {
            var wait = lease.TryGetMetadata(MetadataName.RetryAfter, out var retryAfter) && retryAfter > TimeSpan.Zero ? retryAfter : TimeSpan.FromSeconds(1);
            return HeldBack(request, wait, "client-side limit reached");
        }

        var response = await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.TooManyRequests)
        {
            limits.Pause(endpoint, RetryAfterHeader.Read(response, time) ?? TimeSpan.FromSeconds(1));
        }
        return response;
    }

    private static HttpResponseMessage HeldBack(HttpRequestMessage request, TimeSpan wait, string why)
    {
        var response = new HttpResponseMessage(HttpStatusCode.TooManyRequests) { RequestMessage = request };
        response.Headers.RetryAfter = new RetryConditionHeaderValue(wait);
        response.Headers.Add(KlaviyoRateLimits.HeldBackHeader, why);
        return response;
    }
}

internal static class RetryAfterHeader
{
    /// <summary>Retry-After as a duration (seconds or an HTTP date), never negative; null when absent.</summary>
    public static TimeSpan? Read(HttpResponseMessage response, TimeProvider time)
    {
        var header = response.Headers.RetryAfter;
        var value = header?.Delta ?? (header?.Date is { } date ? date - time.GetUtcNow() : null);
        return value is { } v ? (v > TimeSpan.Zero ? v : TimeSpan.Zero) : null;
    }
}
