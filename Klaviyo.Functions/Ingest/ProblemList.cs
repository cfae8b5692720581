namespace Klaviyo.Functions.Ingest;

/// <summary>
/// The problems of one request, bounded: the first <see cref="MaxListed"/> are kept, the rest only counted, so a
/// 4 MB body of <c>[1,1,…]</c> costs a 100-entry answer, not two million entries (spec section 7).
/// </summary>
internal sealed class ProblemList
{
    public const int MaxListed = 100;

    private readonly List<ProblemError> _listed = [];

    /// <summary>Every problem found, listed or not.</summary>
    public int Count { get; private set; }

    public IReadOnlyList<ProblemError> Listed => _listed;

    public int NotListed => Count - _listed.Count;

    public void Add(ProblemError error)
    {
        Count++;
        if (_listed.Count < MaxListed)
        {
            _listed.Add(error);
        }
    }

    /// <summary>Names the event's messageId on the problems listed from <paramref name="start"/> on (the id may come
    /// after the problem in the event's text).</summary>
    internal void SetMessageId(int start, string messageId)
    {
        for (var i = start; i < _listed.Count; i++)
        {
            _listed[i] = _listed[i] with { MessageId = messageId };
        }
    }
}
