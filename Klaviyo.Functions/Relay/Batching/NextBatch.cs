namespace Klaviyo.Functions.Relay;

/// <summary>What a host keeps for its next batch (messages held back for a fuller call): added by whichever batch
/// gathered them, taken all at once by the next one. Thread-safe.</summary>
internal sealed class NextBatch<T>
{
    private readonly Lock _gate = new();
    private List<T> _items = [];

    public void Add(IEnumerable<T> items)
    {
        lock (_gate)
        {
            _items.AddRange(items);
        }
    }

    /// <summary>The smallest of <paramref name="selector"/> over what is kept; null when nothing is.</summary>
    public TValue? Min<TValue>(Func<T, TValue> selector)
    {
        lock (_gate)
        {
            return _items.Count == 0 ? default : _items.Min(selector);
        }
    }

    public List<T> TakeAll()
    {
        lock (_gate)
        {
            var taken = _items;
            _items = [];
            return taken;
        }
    }
}
