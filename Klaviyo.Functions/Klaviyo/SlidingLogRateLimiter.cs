using System.Diagnostics.CodeAnalysis;
using System.Threading.RateLimiting;

namespace Klaviyo.Functions.Klaviyo;

/// <summary>
/// One Klaviyo endpoint's burst (per second) and steady (per minute) limits as exact sliding logs: a call is let
/// through only when fewer than the limit were let through in the last window, measured back from now. So no window
/// of that length, wherever it starts, sees more than the limit — whichever way Klaviyo's fixed windows are aligned,
/// which a fixed-window limiter started at an arbitrary moment cannot promise (it lets up to twice the limit into
/// one of Klaviyo's windows). A call takes a slot in both logs or in neither, so refusals never spend permits.
/// Over the burst limit a call waits (up to one window, at most <c>burst</c> callers at once); over the steady limit
/// it is refused at once with <see cref="MetadataName.RetryAfter"/>, and the relay schedules the message.
/// </summary>
internal sealed class SlidingLogRateLimiter : RateLimiter
{
    private readonly Lock _gate = new();
    private readonly Log _burst;
    private readonly Log _steady;
    private readonly TimeProvider _time;
    private int _waiting;
    private long _idleSince;

    /// <param name="burstWindow">Slightly longer than 1 s leaves room for the calls' transit time to differ.</param>
    public SlidingLogRateLimiter(int perBurstWindow, TimeSpan burstWindow, int perSteadyWindow, TimeSpan steadyWindow, TimeProvider time)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(perBurstWindow, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(perSteadyWindow, 1);
        _burst = new Log(perBurstWindow, burstWindow);
        _steady = new Log(perSteadyWindow, steadyWindow);
        _time = time;
        _idleSince = time.GetTimestamp();
    }

    public override TimeSpan? IdleDuration
    {
        get
        {
            lock (_gate)
            {
                return _waiting > 0 ? null : _time.GetElapsedTime(_idleSince);
            }
        }
    }

    public override RateLimiterStatistics? GetStatistics() => null;

    /// <summary>The burst limit now in force, at most the one the limiter was built with: an instance that learns it has
    /// only part of the account's traffic takes only that part of the account's burst.</summary>
    public int BurstLimit
    {
        get
        {
            lock (_gate)
            {
                return _burst.Limit;
            }
        }
        set
        {
            lock (_gate)
            {
                _burst.Limit = Math.Clamp(value, 1, _burst.Capacity);
            }
        }
    }

    protected override RateLimitLease AttemptAcquireCore(int permitCount)
    {
        ThrowIfNotOne(permitCount);
        lock (_gate)
        {
            var (burstWait, steadyWait) = TryTake(_time.GetUtcNow().UtcTicks);
            return burstWait == TimeSpan.Zero && steadyWait == TimeSpan.Zero ? Lease.Acquired : Lease.Refused(Max(burstWait, steadyWait));
        }
    }

    protected override async ValueTask<RateLimitLease> AcquireAsyncCore(int permitCount, CancellationToken cancellationToken)
    {
        ThrowIfNotOne(permitCount);
        var waiting = false;
        try
        {
            while (true)
            {
                TimeSpan wait;
                lock (_gate)
                {
                    var (burstWait, steadyWait) = TryTake(_time.GetUtcNow().UtcTicks);
                    if (burstWait == TimeSpan.Zero && steadyWait == TimeSpan.Zero)
                    {
                        return Lease.Acquired;
                    }
                    if (steadyWait > TimeSpan.Zero)
                    {
                        return Lease.Refused(Max(burstWait, steadyWait));
                    }
                    if (!waiting)
                    {
                        if (_waiting >= _burst.Limit)
                        {
                            return Lease.Refused(burstWait);
                        }
                        _waiting++;
                        waiting = true;
                    }
                    wait = burstWait;
                }
                await Task.Delay(wait, _time, cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            if (waiting)
            {
                lock (_gate)
                {
                    if (--_waiting == 0)
                    {
                        _idleSince = _time.GetTimestamp();
                    }
                }
            }
        }
    }

    /// <summary>Takes a slot in both logs when both have one; otherwise how long until each has one.</summary>
    private (TimeSpan Burst, TimeSpan Steady) TryTake(long nowTicks)
    {
        var burstWait = _burst.WaitFor(nowTicks);
        var steadyWait = _steady.WaitFor(nowTicks);
        if (burstWait == TimeSpan.Zero && steadyWait == TimeSpan.Zero)
        {
            _burst.Add(nowTicks);
            _steady.Add(nowTicks);
            _idleSince = _time.GetTimestamp();
        }
        return (burstWait, steadyWait);
    }

    private static TimeSpan Max(TimeSpan a, TimeSpan b) => a > b ? a : b;

    private static void ThrowIfNotOne(int permitCount)
    {
        if (permitCount != 1)
        {
            throw new ArgumentOutOfRangeException(nameof(permitCount), permitCount, "One permit per call.");
        }
    }

    /// <summary>The times of the last <see cref="Capacity"/> calls let through, oldest first (a ring); at most
    /// <see cref="Limit"/> of them may fall in one window.</summary>
    private sealed class Log(int capacity, TimeSpan window)
    {
        private readonly long[] _ticks = new long[capacity];
        private int _oldest;
        private int _count;
        private int _limit = capacity;

        public int Capacity => _ticks.Length;

        public int Limit
        {
            get => _limit;
            set => _limit = value;
        }

        public TimeSpan WaitFor(long nowTicks)
        {
            if (_count < Limit)
            {
                return TimeSpan.Zero;
            }
            // The Limit-th most recent call frees its place when it leaves the window.
            var freeAt = _ticks[(_oldest + _count - Limit) % _ticks.Length] + window.Ticks;
            return freeAt <= nowTicks ? TimeSpan.Zero : TimeSpan.FromTicks(freeAt - nowTicks);
        }

        public void Add(long nowTicks)
        {
            if (_count < _ticks.Length)
            {
                _ticks[(_oldest + _count) % _ticks.Length] = nowTicks;
                _count++;
                return;
            }
            _ticks[_oldest] = nowTicks;
            _oldest = (_oldest + 1) % _ticks.Length;
        }
    }

    private sealed class Lease : RateLimitLease
    {
        public static readonly Lease Acquired = new(true, null);

        private readonly TimeSpan? _retryAfter;

        private Lease(bool acquired, TimeSpan? retryAfter)
        {
            IsAcquired = acquired;
            _retryAfter = retryAfter;
        }

        public static Lease Refused(TimeSpan retryAfter) => new(false, retryAfter);

        public override bool IsAcquired { get; }

        public override IEnumerable<string> MetadataNames => _retryAfter is null ? [] : [MetadataName.RetryAfter.Name];

        public override bool TryGetMetadata(string metadataName, out object? metadata)
        {
            if (_retryAfter is { } retryAfter && metadataName == MetadataName.RetryAfter.Name)
            {
                metadata = retryAfter;
                return true;
            }
            metadata = null;
            return false;
        }

        protected override void Dispose(bool disposing)
        {
        }
    }
}
