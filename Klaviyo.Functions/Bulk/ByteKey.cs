namespace Klaviyo.Functions.Bulk;

/// <summary>
/// A dictionary key made of one or two byte ranges (parts the transform wrote: a profile's identity, an event's
/// dedupe attributes), compared by content, so grouping needs no string or parse of our own output.
/// </summary>
internal readonly struct ByteKey(ReadOnlyMemory<byte> first, ReadOnlyMemory<byte> second = default) : IEquatable<ByteKey>
{
    private readonly ReadOnlyMemory<byte> _first = first;
    private readonly ReadOnlyMemory<byte> _second = second;

    public bool Equals(ByteKey other) =>
        _first.Span.SequenceEqual(other._first.Span) && _second.Span.SequenceEqual(other._second.Span);

    public override bool Equals(object? obj) => obj is ByteKey other && Equals(other);

    public override int GetHashCode()
    {
        var hash = new HashCode();
        hash.AddBytes(_first.Span);
        hash.AddBytes(_second.Span);
        return hash.ToHashCode();
    }
}
