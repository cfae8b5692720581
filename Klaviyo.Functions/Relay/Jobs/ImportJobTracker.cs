using Klaviyo.Functions.Queue;
using Klaviyo.Functions.Bulk;

namespace Klaviyo.Functions.Relay;

/// <summary>What to do with a tracker message once its job was asked about.</summary>
internal abstract record TrackerStep
{
    private TrackerStep() { }

    /// <summary>The job still runs, or Klaviyo could not answer now: queue <paramref name="Next"/> for <paramref name="Due"/>.</summary>
    public sealed record PollAgain(QueuedEvent Next, DateTimeOffset Due) : TrackerStep;

    /// <summary>The job ended: take the parked messages back and settle each by its verdict (by sequence number); the
    /// <paramref name="Ticket"/> comes back for those still parked afterwards.</summary>
    public sealed record Settle(IReadOnlyList<long> Sequences, IReadOnlyDictionary<long, BulkVerdict> Verdicts, JobTicket? Ticket = null) : TrackerStep;

    /// <summary>The tracker's body is not a ticket; <paramref name="Sequences"/> are the parked messages it still names.</summary>
    public sealed record Unreadable(string Reason, IReadOnlyList<long> Sequences) : TrackerStep;
}

/// <summary>
/// Import job tracking (spec 8.3). Waiting for a job holds no lock: the job's messages are parked (deferred) and a
/// tracker message carrying the job id and their sequence numbers is scheduled on the same queue. Each time the tracker
/// comes round, the job is asked about once; while it runs, a tracker for the next poll is scheduled (a growing
/// interval, <see cref="PollDelays"/>). Everything lives in the queue, so a restart loses nothing: the next instance
/// picks the tracker up. A job still unfinished after <see cref="MaxWait"/> retries its messages.
/// </summary>
internal sealed class ImportJobTracker(ImportJobClient client, TimeProvider time)
{
    /// <summary>
    /// The first poll waits out the settlement of the batch that started the job: its tracker is queued before its
    /// messages are deferred, and a tracker that came round before they were would find them missing and strand them.
    /// </summary>
    public static readonly TimeSpan FirstPoll = RelaySettler.SettlementTimeout + TimeSpan.FromSeconds(1);

    /// <summary>Between later polls: Klaviyo's small jobs finish in seconds, large ones in minutes.</summary>
    public static readonly IReadOnlyList<TimeSpan> PollDelays =
        [TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(3), TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(10), TimeSpan.FromSeconds(30), TimeSpan.FromSeconds(60)];

    /// <summary>When a tracker comes back for messages still parked: a lock taken on them has run out by then.</summary>
    public static readonly TimeSpan AfterLock = Settings.RelayOptions.MessageLockDuration + TimeSpan.FromSeconds(10);

    /// <summary>How long a job may run before its messages are retried in a new one.</summary>
    public static readonly TimeSpan MaxWait = TimeSpan.FromHours(6);

    /// <summary>The first tracker of a job Klaviyo just accepted, and when it is due.</summary>
    public (QueuedEvent Tracker, DateTimeOffset Due) Start(StartedJob job, IReadOnlyList<IReadOnlyList<long>> sequencesPerItem)
    {
        var ticket = JobTicket.ForJob(job.Request.Path, job.JobId, job.ItemIdentities, sequencesPerItem, time.GetUtcNow());
        return (Tracker(ticket), time.GetUtcNow() + FirstPoll);
    }

    public async Task<TrackerStep> CheckAsync(ReadOnlyMemory<byte> body, CancellationToken cancellationToken)
    {
        if (!JobTicket.TryParse(body.Span, out var ticket, out var error))
        {
            return new TrackerStep.Unreadable(error, JobTicket.Salvage(body.Span));
        }
        var check = await client.CheckAsync(ticket!, cancellationToken).ConfigureAwait(false);
        var waited = time.GetUtcNow() - ticket!.CreatedAt;
        switch (check)
        {
            case ImportJobCheck.Settled settled:
                return Settle(ticket, settled.PerItem);
            case ImportJobCheck.Running or ImportJobCheck.NotNow when waited > MaxWait:
                return Settle(ticket, ticket.Items.Select(_ => (BulkVerdict)new BulkVerdict.RetryLater(null, $"import job {ticket.JobId} of POST {ticket.Path} did not finish within {MaxWait}")).ToList());
            case ImportJobCheck.NotNow { HeldBack: true } held:
                // Not asked: the job-read budget names the moment it has room, and the poll interval does not grow.
                return Again(ticket, held.RetryAfter ?? PollDelays[0]);
            case ImportJobCheck.NotNow notNow:
                var delay = Delay(ticket.Polls + 1);
                return Again(ticket, notNow.RetryAfter is { } after && after > delay ? after : delay);
            default:
                return Again(ticket, Delay(ticket.Polls + 1));
        }
    }

    /// <summary>Not asking now (no time left in this invocation, or the relay is not ready): the same poll again after
    /// <paramref name="delay"/> (default the shortest poll interval), under a new id.</summary>
    public TrackerStep Postpone(ReadOnlyMemory<byte> body, TimeSpan? delay = null) =>
        JobTicket.TryParse(body.Span, out var ticket, out var error) ? Again(ticket!, delay ?? PollDelays[0]) : new TrackerStep.Unreadable(error, JobTicket.Salvage(body.Span));

    /// <summary>Some of the job's messages are still parked after it settled them (locked by a run that died or by
    /// another receiver, or given back after a failed settlement): the same job again for those only, once their lock
    /// has run out (<see cref="AfterLock"/>).</summary>
    public TrackerStep.PollAgain Recheck(JobTicket ticket, IReadOnlySet<long> stillParked) =>
        new(Tracker(ticket.Keeping(stillParked).Polled()), time.GetUtcNow() + AfterLock);

    private TrackerStep.PollAgain Again(JobTicket ticket, TimeSpan delay)
    {
        var next = ticket.Polled();
        return new TrackerStep.PollAgain(Tracker(next), time.GetUtcNow() + delay);
    }

    private static TrackerStep.Settle Settle(JobTicket ticket, IReadOnlyList<BulkVerdict> perItem)
    {
        var verdicts = new Dictionary<long, BulkVerdict>();
        for (var item = 0; item < ticket.Items.Count; item++)
        {
            foreach (var sequence in ticket.Items[item].Sequences)
            {
                verdicts[sequence] = perItem[item];
            }
        }
        return new TrackerStep.Settle(verdicts.Keys.ToList(), verdicts, ticket);
    }

    private static TimeSpan Delay(int polls) => PollDelays[Math.Clamp(polls - 1, 0, PollDelays.Count - 1)];

    private static QueuedEvent Tracker(JobTicket ticket) =>
        new(RelayMessage.TrackerMessageId(ticket.JobId, ticket.Items.SelectMany(i => i.Sequences).DefaultIfEmpty().Min(), ticket.Polls + 1), RelayMessage.ImportJobSubject, ticket.Serialize(), 1, "import-job:" + ticket.JobId);
}
