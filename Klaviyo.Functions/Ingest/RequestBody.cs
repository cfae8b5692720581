using System.Buffers;

namespace Klaviyo.Functions.Ingest;

/// <summary>
/// The raw request body in one pooled buffer, read with a cap: Content-Length is only a sizing hint, a body that
/// turns out longer than the cap is refused after at most cap + 1 bytes. Parsing, signature and validation all
/// work on this one buffer.
/// </summary>
public sealed class RequestBody : IDisposable
{
    private const int InitialSize = 16 * 1024;
    private byte[]? _buffer;
    private readonly int _length;

    private RequestBody(byte[] buffer, int length)
    {
        _buffer = buffer;
        _length = length;
    }

    public ReadOnlyMemory<byte> Memory => (_buffer ?? throw new ObjectDisposedException(nameof(RequestBody))).AsMemory(0, _length);

    /// <summary>Reads the whole stream, or returns null as soon as it is longer than <paramref name="maxBytes"/>.</summary>
    public static async Task<RequestBody?> ReadAsync(Stream stream, int maxBytes, long? contentLength, CancellationToken cancellationToken)
    {
        // One byte over the cap is enough to know the body is too large.
        var limit = maxBytes + 1;
        var size = contentLength is >= 0 and var declared && declared < limit ? (int)declared + 1 : Math.Min(InitialSize, limit);
        var buffer = ArrayPool<byte>.Shared.Rent(size);
        var filled = 0;
        try
        {
            while (true)
            {
                if (filled == buffer.Length)
                {
                    if (filled >= limit)
                    {
                        ArrayPool<byte>.Shared.Return(buffer);
                        return null;
                    }
                    var larger = ArrayPool<byte>.Shared.Rent((int)Math.Min((long)buffer.Length * 2, limit));
                    buffer.AsSpan(0, filled).CopyTo(larger);
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = larger;
                }
                var read = await stream.ReadAsync(buffer.AsMemory(filled, Math.Min(buffer.Length, limit) - filled), cancellationToken);
                if (read == 0)
                {
                    return new RequestBody(buffer, filled);
                }
                filled += read;
                if (filled > maxBytes)
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                    return null;
                }
            }
        }
        catch
        {
            ArrayPool<byte>.Shared.Return(buffer);
            throw;
        }
    }

    public void Dispose()
    {
        if (_buffer is { } buffer)
        {
            _buffer = null;
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}
