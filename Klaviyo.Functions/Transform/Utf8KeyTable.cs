using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;

namespace Klaviyo.Functions.Transform;

/// <summary>
/// A small immutable lookup from JSON property names (compared as raw UTF-8, case-sensitive) to an index.
/// The transform checks every incoming key against a few of these tables; comparing the raw UTF-8 bytes of the
/// parsed document avoids allocating a string per key (the hot path of the benchmark).
/// </summary>
internal sealed class Utf8KeyTable
{
    private readonly byte[][][] _byLength;
    private readonly int[][] _indexByLength;

    public Utf8KeyTable(params string[] keys)
    {
        Keys = keys;
        var encoded = new byte[keys.Length][];
        var max = 0;
        for (var i = 0; i < keys.Length; i++)
        {
            encoded[i] = Encoding.UTF8.GetBytes(keys[i]);
            max = Math.Max(max, encoded[i].Length);
        }
        var buckets = new List<(byte[] Key, int Index)>[max + 1];
        for (var i = 0; i < encoded.Length; i++)
        {
            (buckets[encoded[i].Length] ??= []).Add((encoded[i], i));
        }
        _byLength = new byte[max + 1][][];
        _indexByLength = new int[max + 1][];
        for (var length = 0; length <= max; length++)
        {
            var bucket = buckets[length];
            _byLength[length] = bucket is null ? [] : bucket.ConvertAll(b => b.Key).ToArray();
            _indexByLength[length] = bucket is null ? [] : bucket.ConvertAll(b => b.Index).ToArray();
        }
    }

    public IReadOnlyList<string> Keys { get; }

    /// <summary>The index of <paramref name="utf8Key"/> (unescaped UTF-8), or -1.</summary>
    public int IndexOf(ReadOnlySpan<byte> utf8Key)
    {
        if (utf8Key.Length >= _byLength.Length)
        {
            return -1;
        }
        var candidates = _byLength[utf8Key.Length];
        for (var i = 0; i < candidates.Length; i++)
        {
            if (utf8Key.SequenceEqual(candidates[i]))
            {
                return _indexByLength[utf8Key.Length][i];
            }
        }
        return -1;
    }

    /// <summary>The index of the property's name, or -1.</summary>
    public int IndexOf(JsonProperty property)
    {
        var raw = JsonMarshal.GetRawUtf8PropertyName(property);
        if (raw.IndexOf((byte)'\\') < 0)
        {
            return IndexOf(raw);
        }
        // Escaped names are rare; unescape through the string form.
        return IndexOf(Encoding.UTF8.GetBytes(property.Name));
    }

    public bool Contains(JsonProperty property) => IndexOf(property) >= 0;
}
