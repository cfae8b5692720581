using System.Collections.Concurrent;
using Microsoft.Extensions.Options;

namespace Klaviyo.Functions.Ingest;

/// <summary>
/// What the ingest admits beyond a single request's rules: the bytes of all request bodies held at once
/// (<see cref="IngestOptions.MaxInFlightBodyBytes"/>) and whether the app is stopping. Both are answered 503 with
/// <c>Retry-After</c>, so a sender backs off instead of losing events or a connection being refused. A body that
/// arrives slower than <see cref="IngestOptions.MinBodyBytesPerSecond"/> holds its share only while nobody else needs
/// it: a request that finds the budget full evicts slow uploads (they are answered 408) and takes their room, so a few
/// connections that send a megabyte and then a byte a second cannot deny everyone else.
/// </summary>
internal sealed class IngestAdmission(IOptions<IngestOptions> options, TimeProvider? time = null)
{
    /// <summary>A body is slow when its last <see cref="SlowWindow"/> brought less than the minimum rate.</summary>
    public static readonly TimeSpan SlowWindow = TimeSpan.FromSeconds(2);

    /// <summary>How long a request that finds the budget full waits for room before it is answered 503.</summary>
    public static readonly TimeSpan EvictionWait = TimeSpan.FromSeconds(3);

    private readonly TimeProvider _time = time ?? TimeProvider.System;
    private readonly ConcurrentDictionary<BodyUpload, byte> _uploads = new();
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

    /// <summary>As <see cref="TryReserve"/>; when the bytes do not fit, waits up to <see cref="EvictionWait"/> for room:
    /// for uploads to finish, or for slow ones (other than <paramref name="self"/>) to be evicted and give theirs back.</summary>
    public async ValueTask<bool> ReserveAsync(long bytes, BodyUpload? self, CancellationToken cancellationToken)
    {
        if (TryReserve(bytes))
        {
            return true;
        }
        // Waiting for the ingest's own budget is not the sender's slowness: the wait does not count against its rate.
        self?.Pause();
        try
        {
            var deadline = _time.GetTimestamp() + (long)(EvictionWait.TotalSeconds * _time.TimestampFrequency);
            while (!TryReserve(bytes))
            {
                if (self?.IsEvicted == true || _stopping)
                {
                    return false;
                }
                var now = _time.GetTimestamp();
                EvictSlowUploads(bytes, self, now);
                if (now > deadline)
                {
                    return false;
                }
                await Task.Delay(TimeSpan.FromMilliseconds(5), _time, cancellationToken).ConfigureAwait(false);
            }
            return true;
        }
        finally
        {
            self?.Resume();
        }
    }

    /// <summary>Evicts slow uploads, largest first, until what is free and on its way back covers <paramref name="bytes"/>.</summary>
    private void EvictSlowUploads(long bytes, BodyUpload? self, long now)
    {
        var minRate = options.Value.MinBodyBytesPerSecond;
        var pending = _uploads.Keys.Where(u => u != self && u.IsEvicted).Sum(u => u.Reserved);
        var shortfall = bytes - (options.Value.MaxInFlightBodyBytes - ReservedBytes) - pending;
        if (shortfall <= 0)
        {
            return;
        }
        foreach (var upload in _uploads.Keys.Where(u => u != self && !u.IsEvicted && u.IsSlow(now, minRate)).OrderByDescending(u => u.Reserved).ToList())
        {
            if (upload.Evict() && (shortfall -= upload.Reserved) <= 0)
            {
                return;
            }
        }
    }

    public void Release(long bytes) => Interlocked.Add(ref _reserved, -bytes);

    /// <summary>Registers a body being received, so it can be measured and, when slow, evicted.</summary>
    public BodyUpload BeginUpload()
    {
        var upload = new BodyUpload(this, _time, options.Value.MinBodyBytesPerSecond);
        _uploads.TryAdd(upload, 0);
        return upload;
    }

    internal void EndUpload(BodyUpload upload) => _uploads.TryRemove(upload, out _);
}

/// <summary>One request body being received: what it holds of the budget and how fast it arrives.</summary>
internal sealed class BodyUpload : IDisposable
{
    private readonly IngestAdmission _admission;
    private readonly TimeProvider _time;
    private readonly long _windowBytesNeeded;
    private readonly CancellationTokenSource _evicted = new();
    private long _windowStart;
    private long _windowBytes;
    private long _reserved;

    internal BodyUpload(IngestAdmission admission, TimeProvider time, int minBytesPerSecond)
    {
        _admission = admission;
        _time = time;
        _windowBytesNeeded = (long)(minBytesPerSecond * IngestAdmission.SlowWindow.TotalSeconds);
        _windowStart = time.GetTimestamp();
    }

    /// <summary>Cancelled when another request took this upload's room.</summary>
    public CancellationToken Evicted => _evicted.Token;

    public bool IsEvicted => _evicted.IsCancellationRequested;

    public long Reserved
    {
        get => Interlocked.Read(ref _reserved);
        set => Interlocked.Exchange(ref _reserved, value);
    }

    /// <summary>Counts bytes received; each <see cref="IngestAdmission.SlowWindow"/>'s worth at the minimum rate starts a
    /// new window.</summary>
    public void Received(int bytes)
    {
        _windowBytes += bytes;
        if (_windowBytes >= _windowBytesNeeded)
        {
            _windowBytes = 0;
            Interlocked.Exchange(ref _windowStart, _time.GetTimestamp());
        }
    }

    private volatile bool _paused;

    /// <summary>The upload waits for the ingest's budget: it is not slow meanwhile.</summary>
    internal void Pause() => _paused = true;

    /// <summary>The wait is over: a new window starts now.</summary>
    internal void Resume()
    {
        _windowBytes = 0;
        Interlocked.Exchange(ref _windowStart, _time.GetTimestamp());
        _paused = false;
    }

    /// <summary>The current window has run longer than <see cref="IngestAdmission.SlowWindow"/> without the bytes the
    /// minimum rate asks for.</summary>
    internal bool IsSlow(long now, int minBytesPerSecond) =>
        minBytesPerSecond > 0 && !_paused && now - Interlocked.Read(ref _windowStart) > IngestAdmission.SlowWindow.TotalSeconds * _time.TimestampFrequency;

    internal bool Evict()
    {
        try
        {
            _evicted.Cancel();
            return true;
        }
        catch (ObjectDisposedException)
        {
            return false; // finished meanwhile: its room is already back
        }
    }

    public void Dispose()
    {
        _admission.EndUpload(this);
        _evicted.Dispose();
    }
}
