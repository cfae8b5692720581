using System.Buffers;

namespace Klaviyo.Functions.Ingest;

/// <summary>How reading a request body ended.</summary>
internal enum BodyReadStatus
{
    Complete,

    /// <summary>The body is longer than the request cap.</summary>
    TooLarge,

    /// <summary>Holding more of it would exceed the ingest's in-flight body budget.</summary>
    OverBudget,

    /// <summary>It arrived slower than the minimum rate and another request needed its room.</summary>
    TooSlow,
}

/// <summary>
/// The raw request body in one pooled buffer, read with a cap. The buffer grows (doubling, from the pool) only as
/// bytes arrive, and each growth is taken from the shared <see cref="IngestAdmission"/> budget first: a slow client
/// that declares 4 MB and sends 10 bytes holds 16 KB, not 4 MB. Content-Length is never trusted for sizing, and a
/// body longer than the cap is refused after at most cap + 1 bytes. A body that arrives slower than
/// <c>Ingest__MinBodyBytesPerSecond</c> is given up when another request needs its room (<see cref="IngestAdmission"/>).
/// Parsing, signature and validation all work on this one buffer.
/// </summary>
internal sealed class RequestBody : IDisposable
{
    private const int InitialSize = 16 * 1024;
    private readonly IngestAdmission _admission;
    private byte[]? _buffer;
    private int _length;
    private long _reserved;

    private RequestBody(IngestAdmission admission) => _admission = admission;

    public ReadOnlyMemory<byte> Memory => Buffer.AsMemory(0, _length);

    /// <summary>The bytes of the shared budget this body holds.</summary>
    public long Reserved => _reserved;

    /// <summary>The body's bytes, writable: the text scan replaces lone surrogate escapes in place.</summary>
    internal Span<byte> WritableSpan => Buffer.AsSpan(0, _length);

    private byte[] Buffer => _buffer ?? throw new ObjectDisposedException(nameof(RequestBody));

    /// <summary>Reads the whole stream. <see cref="BodyReadStatus.Complete"/> comes with the body; otherwise the body
    /// is null and every byte held for it is already given back.</summary>
    public static async Task<(BodyReadStatus Status, RequestBody? Body)> ReadAsync(Stream stream, int maxBytes, IngestAdmission admission, CancellationToken cancellationToken)
    {
        using var upload = admission.BeginUpload();
        using var reading = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, upload.Evicted);
        var body = new RequestBody(admission);
        try
        {
            if (!await body.TryGrowAsync(Math.Min(InitialSize, maxBytes), upload, reading.Token))
            {
                return (Refusal(upload), null);
            }
            while (true)
            {
                var buffer = body.Buffer;
                if (body._length == buffer.Length)
                {
                    if (body._length >= maxBytes)
                    {
                        // Full at the cap: one more byte says the body is too large, without a buffer twice the cap.
                        var probe = new byte[1];
                        if (await stream.ReadAsync(probe, reading.Token) == 0)
                        {
                            return Complete(ref body);
                        }
                        return (BodyReadStatus.TooLarge, null);
                    }
                    if (!await body.TryGrowAsync((int)Math.Min((long)buffer.Length * 2, maxBytes), upload, reading.Token))
                    {
                        return (Refusal(upload), null);
                    }
                    buffer = body.Buffer;
                }
                var read = await stream.ReadAsync(buffer.AsMemory(body._length, Math.Min(buffer.Length, maxBytes) - body._length), reading.Token);
                if (read == 0)
                {
                    return Complete(ref body);
                }
                body._length += read;
                upload.Received(read);
            }
        }
        catch (OperationCanceledException) when (upload.IsEvicted && !cancellationToken.IsCancellationRequested)
        {
            return (BodyReadStatus.TooSlow, null);
        }
        finally
        {
            body?.Dispose();
        }
    }

    private static BodyReadStatus Refusal(BodyUpload upload) => upload.IsEvicted ? BodyReadStatus.TooSlow : BodyReadStatus.OverBudget;

    private static (BodyReadStatus, RequestBody?) Complete(ref RequestBody? body)
    {
        var complete = body;
        body = null;
        return (BodyReadStatus.Complete, complete);
    }

    /// <summary>Moves the bytes read so far into a pooled buffer of at least <paramref name="size"/> bytes, reserving the
    /// growth from the budget first.</summary>
    private async ValueTask<bool> TryGrowAsync(int size, BodyUpload upload, CancellationToken cancellationToken)
    {
        // The pool hands out powers of two: reserve what will actually be held.
        var expected = (long)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)size);
        if (!await _admission.ReserveAsync(expected - _reserved, upload, cancellationToken))
        {
            return false;
        }
        var held = _reserved = upload.Reserved = expected;
        var larger = ArrayPool<byte>.Shared.Rent(size);
        if (larger.Length != held)
        {
            _admission.Release(held - larger.Length);
            _reserved = upload.Reserved = larger.Length;
        }
        if (_buffer is { } old)
        {
            old.AsSpan(0, _length).CopyTo(larger);
            ArrayPool<byte>.Shared.Return(old);
        }
        _buffer = larger;
        return true;
    }

    public void Dispose()
    {
        if (_buffer is { } buffer)
        {
            _buffer = null;
            ArrayPool<byte>.Shared.Return(buffer);
        }
        _admission.Release(_reserved);
        _reserved = 0;
    }
}
