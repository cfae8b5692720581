using System.Text;
using Klaviyo.Functions.Relay;

namespace Klaviyo.Functions.Tests.TestSupport;

/// <summary>An in-memory dead-letter queue with the store's locking contract: received messages are not handed out
/// again by the same reader, removed ones are gone, the rest are released on dispose.</summary>
internal sealed class FakeDeadLetterStore : IDeadLetterStore
{
    private long _sequence = 100;

    public List<DeadLetteredMessage> Messages { get; } = [];

    public int Released { get; private set; }

    /// <summary>What the readers did, in order: <c>receive:&lt;n&gt;</c> and <c>remove:&lt;messageId&gt;</c>.</summary>
    public List<string> Operations { get; } = [];

    /// <summary>Thrown by the remove numbered <see cref="FailRemoveAt"/> (1-based) when set: a lock lost mid-replay.</summary>
    public Exception? RemoveFailure { get; set; }

    public int FailRemoveAt { get; set; } = 1;

    public FakeDeadLetterStore Add(string messageId, string reason, string json = """{"type":"track"}""", string subject = "track")
    {
        Messages.Add(new DeadLetteredMessage(messageId, subject, Encoding.UTF8.GetBytes(json), reason, $"{reason} description", ++_sequence, new Dictionary<string, object>()));
        return this;
    }

    public Task<IDeadLetterReader> OpenAsync(CancellationToken cancellationToken) => Task.FromResult<IDeadLetterReader>(new Reader(this));

    private sealed class Reader(FakeDeadLetterStore store) : IDeadLetterReader
    {
        private readonly HashSet<long> _locked = [];

        public Task<IReadOnlyList<DeadLetteredMessage>> ReceiveAsync(int maxMessages, CancellationToken cancellationToken)
        {
            var batch = store.Messages.Where(m => !_locked.Contains(m.SequenceNumber)).Take(maxMessages).ToList();
            _locked.UnionWith(batch.Select(m => m.SequenceNumber));
            store.Operations.Add($"receive:{batch.Count}");
            return Task.FromResult<IReadOnlyList<DeadLetteredMessage>>(batch);
        }

        public Task RemoveAsync(DeadLetteredMessage message, CancellationToken cancellationToken)
        {
            if (store.RemoveFailure is not null && store.Operations.Count(o => o.StartsWith("remove:", StringComparison.Ordinal)) + 1 >= store.FailRemoveAt)
            {
                throw store.RemoveFailure;
            }
            store.Operations.Add($"remove:{message.MessageId}");
            store.Messages.Remove(message);
            _locked.Remove(message.SequenceNumber);
            return Task.CompletedTask;
        }

        public ValueTask DisposeAsync()
        {
            store.Released += _locked.Count;
            return ValueTask.CompletedTask;
        }
    }
}
