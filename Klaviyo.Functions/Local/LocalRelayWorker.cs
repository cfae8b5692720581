using Klaviyo.Functions.Relay;
using Klaviyo.Functions.Settings;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Klaviyo.Functions.Local;

/// <summary>
/// Local mode's stand-in for the batched queue trigger: <see cref="LocalOptions.Concurrency"/> consumers each lease a
/// batch of due events from the SQLite queue (up to <see cref="LocalOptions.BatchSize"/>; with fewer than
/// <see cref="LocalOptions.MinBatchSize"/> ready while events are streaming in, it waits up to
/// <see cref="LocalOptions.BatchWait"/> for more; on an idle relay it relays a lone event at once), run it
/// through the same <see cref="RelaySettler"/> as <see cref="RelayFunction"/>, and settle with <see cref="LocalSettlement"/>.
/// Import-job trackers have a lane of their own (<see cref="TrackAsync"/>): a job's status read never waits behind the
/// event backlog, and is paced by the job-read budget alone. A batch that reached Klaviyo with none of its calls (all
/// held back by the rate limiter) stops the event consumers until the first held-back endpoint lets calls through
/// again, rather than leasing and putting off the rest of the backlog meanwhile.
/// On stop they stop taking events, let in-flight batches finish for up to <see cref="LocalOptions.ShutdownGrace"/>,
/// and leave the backlog in the database.
/// </summary>
internal sealed partial class LocalRelayWorker(
    SqliteEventQueue queue,
    LocalSettlement settlement,
    IServiceProvider services,
    LocalCounters counters,
    IOptions<LocalOptions> options,
    IOptions<RelayOptions> relayOptions,
    TimeProvider time,
    ILogger<LocalRelayWorker> logger) : IHostedService, IDisposable
{
    private static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(250);
    private static readonly TimeSpan PruneInterval = TimeSpan.FromMinutes(1);

    /// <summary>How often the tracker lane looks for due trackers, and how many it takes at once.</summary>
    private static readonly TimeSpan TrackerPollInterval = TimeSpan.FromMilliseconds(500);
    private const int TrackerBatchSize = 50;

    /// <summary>The longest the event consumers wait for a held-back budget before leasing again.</summary>
    private static readonly TimeSpan MaxBudgetWait = TimeSpan.FromSeconds(30);

    /// <summary>A batch this large means events are streaming in: the next one waits to fill.</summary>
    private const int BusyBatchSize = 10;

    private readonly CancellationTokenSource _stopping = new();
    private readonly CancellationTokenSource _abort = new();
    private readonly SemaphoreSlim _leasing = new(1, 1);
    private Task[] _consumers = [];
    private long _lastPrune = time.GetTimestamp();
    private int _lastBatchSize;
    private long _budgetWaitUntilTicks;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _consumers = Enumerable.Range(0, options.Value.Concurrency).Select(_ => Task.Run(ConsumeAsync, CancellationToken.None))
            .Append(Task.Run(TrackAsync, CancellationToken.None)).ToArray();
        LogStarted(logger, options.Value.Concurrency, options.Value.BatchSize, queue.Path, queue.Counts().Waiting);
        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        queue.Close(); // the ingest now answers 503
        await _stopping.CancelAsync().ConfigureAwait(false);
        var drained = Task.WhenAll(_consumers);
        if (await Task.WhenAny(drained, Task.Delay(options.Value.ShutdownGrace, time, cancellationToken)).ConfigureAwait(false) != drained)
        {
            await _abort.CancelAsync().ConfigureAwait(false);
        }
        await drained.ConfigureAwait(false);
        Console.WriteLine(counters.Summary(queue.Counts(), queue.Path));
    }

    public void Dispose()
    {
        _stopping.Dispose();
        _abort.Dispose();
        _leasing.Dispose();
    }

    private async Task ConsumeAsync()
    {
        while (!_stopping.IsCancellationRequested)
        {
            var budgetWait = new DateTimeOffset(Interlocked.Read(ref _budgetWaitUntilTicks), TimeSpan.Zero) - time.GetUtcNow();
            if (budgetWait > TimeSpan.Zero)
            {
                try
                {
                    await Task.Delay(budgetWait, time, _stopping.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    break;
                }
                continue;
            }
            var batch = await TakeBatchAsync().ConfigureAwait(false);
            if (batch.Count == 0)
            {
                try
                {
                    await queue.WaitForEventsAsync(PollInterval, _stopping.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    break;
                }
                continue;
            }
            var outcomes = await RelayAsync(batch, gather: !_stopping.IsCancellationRequested).ConfigureAwait(false);
            if (PutOffWhole(batch, outcomes) is { } wait)
            {
                // Nothing of the batch got through: every call was held back by the rate limiter (or the relay is not
                // ready). The next batch would meet the same budget, so the consumers wait for it instead of putting off
                // the backlog batch by batch.
                var until = (time.GetUtcNow() + (wait < MaxBudgetWait ? wait : MaxBudgetWait)).UtcTicks;
                if (until > Interlocked.Read(ref _budgetWaitUntilTicks))
                {
                    Interlocked.Exchange(ref _budgetWaitUntilTicks, until);
                }
            }
        }
        // What waited for a fuller call goes now, full or not, within the shutdown grace.
        var gathered = settlement.Gathered.TakeAll();
        if (gathered.Count > 0)
        {
            await RelayAsync(gathered, gather: false).ConfigureAwait(false);
        }
    }

    /// <summary>When every event of the batch was put off without spending an attempt (held back, not sent), the
    /// soonest any of them is due again; otherwise null. The event lane carries no tracker, so the outcomes are the
    /// batch's, in order.</summary>
    private static TimeSpan? PutOffWhole(List<LeasedEvent> batch, IReadOnlyList<RelayOutcome> outcomes)
    {
        if (outcomes.Count != batch.Count || batch.Count == 0)
        {
            return null;
        }
        var soonest = TimeSpan.MaxValue;
        for (var i = 0; i < batch.Count; i++)
        {
            if (outcomes[i] is not RelayOutcome.RetryLater retry || retry.NextAttempt != batch[i].Attempt)
            {
                return null;
            }
            soonest = retry.Delay < soonest ? retry.Delay : soonest;
        }
        return soonest;
    }

    /// <summary>The trackers' lane: due import-job trackers, whatever the event backlog holds.</summary>
    private async Task TrackAsync()
    {
        while (!_stopping.IsCancellationRequested)
        {
            List<LeasedEvent> trackers;
            try
            {
                trackers = await queue.LeaseTrackersAsync(TrackerBatchSize, options.Value.LeaseDuration).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                LogLeaseFailed(logger, ex.GetType().Name, ex.Message);
                trackers = [];
            }
            if (trackers.Count > 0)
            {
                await RelayAsync(trackers, gather: false).ConfigureAwait(false);
                continue;
            }
            try
            {
                await Task.Delay(TrackerPollInterval, time, _stopping.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }
    }

    /// <summary>One consumer leases at a time, so batches fill instead of splitting what is ready among consumers.</summary>
    private async Task<List<LeasedEvent>> TakeBatchAsync()
    {
        var batch = new List<LeasedEvent>();
        try
        {
            await _leasing.WaitAsync(_stopping.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return batch;
        }
        try
        {
            var size = options.Value.BatchSize;
            batch.AddRange(await queue.LeaseEventsAsync(size, options.Value.LeaseDuration).ConfigureAwait(false));
            DateTimeOffset until;
            int enough;
            if (settlement.Gathered.Oldest is { } oldest)
            {
                // Events wait for fuller calls: relay them with a full batch of new ones, or once the longest-waiting
                // has waited its window (then its call goes, full or not); never sooner, so waiting costs no re-planning.
                until = Min(time.GetUtcNow() + options.Value.BatchWait, oldest + relayOptions.Value.GatherWindow);
                enough = size;
            }
            else
            {
                // Waiting fills batches under load (fewer, fuller bulk calls); when the last batch was small the relay
                // is idle and a lone event goes at once (spec 8.1).
                var busy = Interlocked.Exchange(ref _lastBatchSize, batch.Count) >= BusyBatchSize || batch.Count >= BusyBatchSize;
                until = time.GetUtcNow() + (busy ? options.Value.BatchWait : TimeSpan.Zero);
                enough = batch.Count == 0 ? 0 : Math.Min(options.Value.MinBatchSize, size);
            }
            while (batch.Count < enough && time.GetUtcNow() < until && !_stopping.IsCancellationRequested)
            {
                try
                {
                    await queue.WaitForEventsAsync(until - time.GetUtcNow(), _stopping.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    break;
                }
                batch.AddRange(await queue.LeaseEventsAsync(size - batch.Count, options.Value.LeaseDuration).ConfigureAwait(false));
            }
            batch.InsertRange(0, settlement.Gathered.TakeAll());
            Interlocked.Exchange(ref _lastBatchSize, batch.Count);
            if (time.GetElapsedTime(Interlocked.Read(ref _lastPrune)) > PruneInterval)
            {
                Interlocked.Exchange(ref _lastPrune, time.GetTimestamp());
                await queue.PruneDuplicatesAsync().ConfigureAwait(false);
            }
            // Here rather than after a batch: an idle relay still finds parked events no tracker holds any more.
            await services.GetRequiredService<ParkedSweeper>().SweepIfDueAsync(settlement, _stopping.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            // What was leased stays leased and is handed out again when the lease lapses.
            LogLeaseFailed(logger, ex.GetType().Name, ex.Message);
        }
        finally
        {
            _leasing.Release();
        }
        return batch;
    }

    private static DateTimeOffset Min(DateTimeOffset a, DateTimeOffset b) => a < b ? a : b;

    private async Task<IReadOnlyList<RelayOutcome>> RelayAsync(List<LeasedEvent> batch, bool gather)
    {
        try
        {
            // Per batch, as the Functions host creates the function per invocation: the typed Klaviyo client is transient.
            var settler = services.GetRequiredService<RelaySettler>();
            var outcomes = await settler.RelayBatchAsync(settlement, batch.Select(LocalSettlement.Delivery).ToList(), _abort.Token, gather).ConfigureAwait(false);
            foreach (var outcome in outcomes)
            {
                counters.Add(outcome);
            }
            return outcomes;
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            // Settlement failed (the database refused the write): the leases lapse and the events are handed out again.
            LogSettleFailed(logger, ex.GetType().Name, batch.Count);
            return [];
        }
    }

    [LoggerMessage(EventId = 5001, Level = LogLevel.Information, Message = "Local relay started: {Concurrency} consumer(s) of batches up to {BatchSize}, queue {Path} ({Waiting} event(s) waiting)")]
    private static partial void LogStarted(ILogger logger, int concurrency, int batchSize, string path, long waiting);

    [LoggerMessage(EventId = 5005, Level = LogLevel.Error, Message = "Could not lease events from the local queue ({ExceptionType}: {Reason}); trying again")]
    private static partial void LogLeaseFailed(ILogger logger, string exceptionType, string reason);

    [LoggerMessage(EventId = 5002, Level = LogLevel.Error, Message = "Could not settle a batch of {Count} ({ExceptionType}); its events are handed out again when their leases lapse")]
    private static partial void LogSettleFailed(ILogger logger, string exceptionType, int count);
}
