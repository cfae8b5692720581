using System.Net;
using System.Net.Http.Headers;
using System.Runtime.CompilerServices;
using System.Threading.RateLimiting;
using Klaviyo.Functions.Settings;
using Microsoft.Extensions.Options;

namespace Klaviyo.Functions.Klaviyo;

/// <summary>
/// Per-endpoint client-side limits (spec section 8): every endpoint has its own 1 s burst and 60 s steady windows.
/// Before Klaviyo has answered, each instance takes 1/<c>Relay__ExpectedInstanceCount</c> of the published limits.
/// Once an answer carries <c>RateLimit-Limit/Remaining/Reset</c> (the account's real steady budget, shared with
/// other instances and integrations), the instance follows Klaviyo instead: its part of the account's traffic (read
/// from how far <c>RateLimit-Remaining</c> falls between its own answers) of what is left, less its calls still on
/// their way, spread over the time to the reset, and the same part of the account's burst. One instance alone thus
/// uses the whole budget; several share it. A 429 pauses the endpoint for its <c>Retry-After</c> and shrinks the part.
/// </summary>
internal sealed class KlaviyoRateLimits : IDisposable
{
    /// <summary>Request option carrying the endpoint, so the handler can pick the limiter.</summary>
    public static readonly HttpRequestOptionsKey<KlaviyoEndpoint> EndpointOption = new("Klaviyo.Endpoint");

    /// <summary>
    /// Request option holding the status of the last transient answer Klaviyo gave a try of the call (0: none). A holder,
    /// because the resilience pipeline sends copies of the request whose options share it.
    /// </summary>
    internal static readonly HttpRequestOptionsKey<StrongBox<int>> KlaviyoRefusedOption = new("Klaviyo.Refused");

    /// <summary>Klaviyo's 1 s burst window, plus 50 ms of room for transit time.</summary>
    public static readonly TimeSpan BurstWindow = TimeSpan.FromMilliseconds(1050);

    /// <summary>Klaviyo's 60 s steady window, plus 250 ms of room for transit time.</summary>
    public static readonly TimeSpan SteadyWindow = TimeSpan.FromMilliseconds(60_250);

    private readonly Dictionary<KlaviyoEndpoint, RateLimiter> _shares = [];
    private readonly Dictionary<KlaviyoEndpoint, SlidingLogRateLimiter> _bursts = [];
    private readonly AccountBudget[] _budgets;
    private readonly long[] _pausedUntilTicks = new long[Enum.GetValues<KlaviyoEndpoint>().Length];
    private readonly TimeProvider _time;

    public KlaviyoRateLimits(IOptions<RelayOptions> options, TimeProvider time)
    {
        _time = time;
        _budgets = new AccountBudget[_pausedUntilTicks.Length];
        foreach (var endpoint in Enum.GetValues<KlaviyoEndpoint>())
        {
            var (perSecond, perMinute) = InstanceShare(endpoint, options.Value.ExpectedInstanceCount);
            // Exact sliding logs, with a little room for the calls' transit times to differ on the way to Klaviyo.
            _shares[endpoint] = new SlidingLogRateLimiter(perSecond, BurstWindow, perMinute, SteadyWindow, time);
            // Once Klaviyo reports the steady budget, only a burst window is kept locally (the headers have no burst): the
            // account's, in this instance's part of the traffic (from the 1/N share up to all of it when alone).
            var burst = PublishedLimit(endpoint).PerSecond;
            _bursts[endpoint] = new SlidingLogRateLimiter(burst, BurstWindow, burst * 60, SteadyWindow, time) { BurstLimit = perSecond };
            _budgets[(int)endpoint] = new AccountBudget(1.0 / Math.Max(1, options.Value.ExpectedInstanceCount));
        }
    }

    /// <summary>Klaviyo's published per-account limits, revision 2026-07-15 (<c>x-klaviyo-ratelimit</c>; spec 8 table).</summary>
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
        KlaviyoEndpoint.UnsubscribeProfiles or KlaviyoEndpoint.RemoveProfilesFromList => PublishedLimit(BudgetOf(endpoint)),
        KlaviyoEndpoint.RequestDeletion => (3, 60),
        KlaviyoEndpoint.GetProfiles => (75, 750),
        _ => throw new ArgumentOutOfRangeException(nameof(endpoint)),
    };

    /// <summary>The endpoint whose budget a call spends (spec 8.3): unsubscriptions the subscription endpoint's, list
    /// removals the list endpoint's; every other endpoint its own.</summary>
    public static KlaviyoEndpoint BudgetOf(KlaviyoEndpoint endpoint) => endpoint switch
    {
        KlaviyoEndpoint.UnsubscribeProfiles => KlaviyoEndpoint.SubscribeProfiles,
        KlaviyoEndpoint.RemoveProfilesFromList => KlaviyoEndpoint.AddProfilesToList,
        _ => endpoint,
    };

    /// <summary>One instance's share; never below one call per window so a large instance count cannot stop the relay.</summary>
    public static (int PerSecond, int PerMinute) InstanceShare(KlaviyoEndpoint endpoint, int expectedInstances)
    {
        var (perSecond, perMinute) = PublishedLimit(endpoint);
        var n = Math.Max(1, expectedInstances);
        return (Math.Max(1, perSecond / n), Math.Max(1, perMinute / n));
    }

    /// <summary>
    /// A permit from the local windows: the 1/N share until Klaviyo has reported the account's budget, then this
    /// instance's part of the account's burst only (the steady window is then <see cref="ReserveAccountSlot"/>'s business).
    /// </summary>
    public ValueTask<RateLimitLease> AcquireAsync(KlaviyoEndpoint endpoint, CancellationToken cancellationToken) =>
        (_budgets[(int)endpoint].Known(_time.GetUtcNow()) ? _bursts[endpoint] : _shares[endpoint]).AcquireAsync(1, cancellationToken);

    /// <summary>This instance's part of the account's calls to <paramref name="endpoint"/> as read from Klaviyo's answers
    /// (1/<c>Relay__ExpectedInstanceCount</c> until there are some), with a little room to grow; at most 1.</summary>
    public double PartOf(KlaviyoEndpoint endpoint) => _budgets[(int)endpoint].Part;

    /// <summary>A call to <paramref name="endpoint"/> is on its way to Klaviyo; <see cref="Answered"/> when it is back.</summary>
    public void Sending(KlaviyoEndpoint endpoint) => _budgets[(int)endpoint].Sending();

    public void Answered(KlaviyoEndpoint endpoint) => _budgets[(int)endpoint].Answered();

    /// <summary>
    /// Records Klaviyo's <c>RateLimit-*</c> answer for <paramref name="endpoint"/>: <paramref name="remaining"/> calls of
    /// the account's <paramref name="limit"/> are left until <paramref name="reset"/> from now.
    /// </summary>
    public void Observe(KlaviyoEndpoint endpoint, int limit, int remaining, TimeSpan reset)
    {
        var budget = _budgets[(int)endpoint];
        budget.Observe(limit, remaining, _time.GetUtcNow() + reset);
        // The account's burst (the headers say nothing of it) in the measured part, rounded down and without the growth
        // margin: K busy instances each taking ceil(burst × (1/K + growth)) overran the account's burst together
        // (4 × ceil(10 × 0.3) = 12 of 10 a second: 429s at every second's boundary).
        _bursts[endpoint].BurstLimit = Math.Max(1, (int)Math.Floor(PublishedLimit(endpoint).PerSecond * budget.Share));
    }

    /// <summary>Klaviyo answered 429 with <paramref name="retryAfter"/>: the endpoint is paused that long, nothing is left
    /// of the budget until then, and this instance's part shrinks (it took more than the account had).</summary>
    public void Refused(KlaviyoEndpoint endpoint, TimeSpan retryAfter)
    {
        Pause(endpoint, retryAfter);
        _budgets[(int)endpoint].Refused(_time.GetUtcNow() + retryAfter);
    }

    /// <summary>
    /// How long to wait before the next call, per Klaviyo's reported budget (zero when none is known or it has reset):
    /// the calls left are spread evenly over the time to the reset, so instances sharing the account slow down together
    /// as <c>RateLimit-Remaining</c> falls. The slot is taken when it is at most <paramref name="maxWait"/> away;
    /// otherwise nothing is taken and <see cref="AccountSlot.Wait"/> says when to come back: the next spaced slot, or the
    /// reset when the budget is spent.
    /// </summary>
    public AccountSlot ReserveAccountSlot(KlaviyoEndpoint endpoint, TimeSpan maxWait) =>
        _budgets[(int)endpoint].Reserve(_time.GetUtcNow(), maxWait);

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
        foreach (var limiter in _shares.Values.Concat(_bursts.Values))
        {
            limiter.Dispose();
        }
    }

    /// <summary>
    /// The account's steady budget for one endpoint as Klaviyo last reported it, less the calls since, and this instance's
    /// part of the account's traffic on it. That part is read from the answers themselves: between two of this
    /// instance's answers in one window, <c>RateLimit-Remaining</c> fell by the calls of every sender on the account, this
    /// instance's one among them. Alone, the part is 1 and the instance paces against the whole budget; with K instances
    /// as busy, about 1/K each, so together they spread the budget over the window instead of each spending it as if alone.
    /// </summary>
    private sealed class AccountBudget(double startShare)
    {
        /// <summary>Added to the measured part, so an instance whose demand grows takes more and instances sharing an
        /// account drift towards equal parts.</summary>
        public const double Growth = 0.05;

        /// <summary>Weight each new answer leaves to the older ones: the part follows about the last 20 answers.</summary>
        private const double Decay = 0.95;

        /// <summary>Answers whose reset is this close to the window's are of the same window (the header is in whole seconds).</summary>
        private static readonly TimeSpan SameWindow = TimeSpan.FromSeconds(2);

        private readonly Lock _gate = new();
        private int _remaining;
        private int _inFlight;
        private DateTimeOffset _resetAt = DateTimeOffset.MinValue;
        private DateTimeOffset _lastSlot = DateTimeOffset.MinValue;
        private DateTimeOffset _windowResetAt = DateTimeOffset.MinValue;
        private int _windowLowest;
        private double _own;
        private double _account;
        private double _share = Math.Clamp(startShare, 0.0, 1.0);

        public bool Known(DateTimeOffset now)
        {
            lock (_gate)
            {
                return now < _resetAt;
            }
        }

        /// <summary>This instance's measured part of the account's calls (the start share until measured).</summary>
        public double Share
        {
            get
            {
                lock (_gate)
                {
                    return _share;
                }
            }
        }

        /// <summary>This instance's part of the account's calls, plus <see cref="Growth"/>, at most 1.</summary>
        public double Part
        {
            get
            {
                lock (_gate)
                {
                    return Math.Min(1.0, _share + Growth);
                }
            }
        }

        public void Sending()
        {
            lock (_gate)
            {
                _inFlight++;
            }
        }

        public void Answered()
        {
            lock (_gate)
            {
                _inFlight = Math.Max(0, _inFlight - 1);
            }
        }

        public void Observe(int limit, int remaining, DateTimeOffset resetAt)
        {
            lock (_gate)
            {
                remaining = Math.Clamp(remaining, 0, Math.Max(limit, remaining));
                _resetAt = resetAt;
                if (resetAt < _windowResetAt + SameWindow && resetAt > _windowResetAt - SameWindow)
                {
                    // Answers may come back out of order: the fall is measured from the lowest count seen in the window.
                    _own = (_own * Decay) + 1;
                    _account = (_account * Decay) + Math.Max(0, _windowLowest - remaining);
                    _windowLowest = Math.Min(_windowLowest, remaining);
                    if (_account >= 1)
                    {
                        _share = Math.Clamp(_own / _account, 0.01, 1.0);
                    }
                }
                else
                {
                    // A new window (or the first answer): the count starts again from here.
                    _windowResetAt = resetAt;
                    _windowLowest = remaining;
                }

                // Klaviyo's word wins (it is the only view of what other instances and integrations spent), less this
                // instance's other calls still on their way (Klaviyo may not have counted them yet) and one call for
                // each other sender its part suggests, which may be on its way before this instance hears again.
                var others = (int)Math.Min(10, Math.Round(1 / _share) - 1);
                _remaining = Math.Max(0, remaining - Math.Max(0, _inFlight - 1) - others);
            }
        }

        /// <summary>Klaviyo answered 429: nothing left until <paramref name="until"/>, and this instance took too much.</summary>
        public void Refused(DateTimeOffset until)
        {
            lock (_gate)
            {
                _remaining = 0;
                _resetAt = until;
                _share = Math.Max(0.01, _share * 0.7);
            }
        }

        public AccountSlot Reserve(DateTimeOffset now, TimeSpan maxWait)
        {
            lock (_gate)
            {
                if (now >= _resetAt)
                {
                    return new AccountSlot(true, TimeSpan.Zero, Spent: false);
                }
                if (_remaining <= 0)
                {
                    return new AccountSlot(_resetAt - now <= maxWait, _resetAt - now, Spent: true);
                }
                // This instance's part of what is left, spread evenly to the reset.
                var interval = (_resetAt - now) / Math.Max(1.0, _remaining * Math.Min(1.0, _share + Growth));
                var slot = _lastSlot + interval > now ? _lastSlot + interval : now;
                if (slot - now > maxWait)
                {
                    return new AccountSlot(false, slot - now, Spent: false);
                }
                _lastSlot = slot;
                _remaining--;
                return new AccountSlot(true, slot - now, Spent: false);
            }
        }
    }
}

/// <summary>A place in Klaviyo's reported budget: taken (<paramref name="Reserved"/>, go after <paramref name="Wait"/>),
/// or not, come back after <paramref name="Wait"/>; <paramref name="Spent"/> when no call is left until the reset.</summary>
internal readonly record struct AccountSlot(bool Reserved, TimeSpan Wait, bool Spent);

/// <summary>
/// Thrown by <see cref="KlaviyoRateLimitHandler"/> inside the HTTP pipeline when the relay's own limiter holds a call
/// back; <see cref="KlaviyoClient"/> turns it into <see cref="KlaviyoResponse.HeldBack"/> at once. It is not a failure:
/// the resilience pipeline does not retry it and no Klaviyo call is recorded.
/// </summary>
internal sealed class KlaviyoHeldBackException(KlaviyoEndpoint endpoint, TimeSpan retryAfter, string reason)
    : Exception($"{endpoint}: held back by the relay's rate limiter ({reason})")
{
    public KlaviyoEndpoint Endpoint { get; } = endpoint;

    public TimeSpan RetryAfter { get; } = retryAfter;

    public string Reason { get; } = reason;
}

/// <summary>
/// Sits inside the retry pipeline, so every try takes a permit. A call the limiter will not allow soon is held back
/// (<see cref="KlaviyoHeldBackException"/>, a value for the caller), never sent and never made to look like Klaviyo's 429.
/// Every answer's <c>RateLimit-*</c> headers feed <see cref="KlaviyoRateLimits.Observe"/>.
/// </summary>
internal sealed class KlaviyoRateLimitHandler(KlaviyoRateLimits limits, TimeProvider time, Diagnostics.RelayMetrics metrics) : DelegatingHandler
{
    /// <summary>A wait this short is waited out in the call rather than held back.</summary>
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
            throw new KlaviyoHeldBackException(endpoint, paused, "paused after Klaviyo answered 429");
        }
        if (paused > TimeSpan.Zero)
        {
            // The tail of a pause is waited out here: holding back for a few milliseconds lets the retry come back
            // before the pause ends (timers and clocks differ by that much).
            await Task.Delay(paused, time, cancellationToken).ConfigureAwait(false);
        }

        var slot = limits.ReserveAccountSlot(endpoint, ShortPause);
        if (!slot.Reserved)
        {
            // Back when its slot comes, not at the reset: the budget left is spread over the window, not spent.
            throw new KlaviyoHeldBackException(endpoint, Max(slot.Wait, ShortPause), slot.Spent
                ? "Klaviyo's RateLimit-Remaining budget is spent until its reset"
                : "Klaviyo's RateLimit-Remaining budget is spread to its reset: the next slot is later");
        }
        if (slot.Wait > TimeSpan.Zero)
        {
            await Task.Delay(slot.Wait, time, cancellationToken).ConfigureAwait(false);
        }

        using var lease = await limits.AcquireAsync(endpoint, cancellationToken).ConfigureAwait(false);
        if (!lease.IsAcquired)
        {
            var wait = lease.TryGetMetadata(MetadataName.RetryAfter, out var retryAfter) && retryAfter > TimeSpan.Zero ? retryAfter : ShortPause;
            throw new KlaviyoHeldBackException(endpoint, wait, "client-side limit reached");
        }

        HttpResponseMessage response;
        limits.Sending(endpoint);
        try
        {
            try
            {
                response = await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is HttpRequestException or IOException or OperationCanceledException)
            {
                metrics.KlaviyoRequestSent(endpoint, null);
                throw;
            }
            metrics.KlaviyoRequestSent(endpoint, (int)response.StatusCode);
            if (response.StatusCode == HttpStatusCode.TooManyRequests)
            {
                limits.Refused(endpoint, RetryAfterHeader.Read(response, time) ?? ShortPause);
            }
            else if (RateLimitHeaders.TryRead(response, out var limit, out var remaining, out var reset))
            {
                limits.Observe(endpoint, limit, remaining, reset);
            }
        }
        finally
        {
            limits.Answered(endpoint);
        }
        if (FailureClassifier.Classify((int)response.StatusCode) == FailureKind.Transient)
        {
            if (request.Options.TryGetValue(KlaviyoRateLimits.KlaviyoRefusedOption, out var refused))
            {
                refused.Value = (int)response.StatusCode;
            }
        }
        return response;
    }

    private static TimeSpan Max(TimeSpan a, TimeSpan b) => a > b ? a : b;
}

/// <summary>Klaviyo's <c>RateLimit-Limit</c>, <c>RateLimit-Remaining</c> and <c>RateLimit-Reset</c> (seconds) headers.</summary>
internal static class RateLimitHeaders
{
    public static bool TryRead(HttpResponseMessage response, out int limit, out int remaining, out TimeSpan reset)
    {
        limit = remaining = 0;
        reset = TimeSpan.Zero;
        if (!First(response, "RateLimit-Limit", out limit) || !First(response, "RateLimit-Remaining", out remaining)
            || !First(response, "RateLimit-Reset", out var seconds) || limit <= 0 || remaining < 0 || seconds < 0 || seconds > 3600)
        {
            return false;
        }
        reset = TimeSpan.FromSeconds(seconds);
        return true;
    }

    // The first integer of the header (a structured form such as "150, 150;w=60" starts with the plain number).
    private static bool First(HttpResponseMessage response, string name, out int value)
    {
        value = 0;
        if (!response.Headers.TryGetValues(name, out var values))
        {
            return false;
        }
        var text = values.FirstOrDefault() ?? "";
        var end = text.IndexOfAny([',', ';', ' ']);
        return int.TryParse(end < 0 ? text : text[..end], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out value);
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
