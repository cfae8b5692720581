using Klaviyo.Functions.Relay;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Klaviyo.Functions.Local;

/// <summary>
/// Local mode's stand-in for the queue trigger: leases due events from the SQLite queue in batches (as many as there
/// are free consumers), runs each through the same <see cref="RelaySettler"/> as <see cref="RelayFunction"/>, and
/// settles with <see cref="LocalSettlement"/>. On stop it stops taking events, lets in-flight ones finish for up to
/// <see cref="LocalOptions.ShutdownGrace"/> (then settles the rest as retries), and leaves the backlog in the database.
/// </summary>
internal sealed partial class LocalRelayWorker(
    SqliteEventQueue queue,
    LocalSettlement settlement,
    IServiceProvider services,
    LocalCounters counters,
    IOptions<LocalOptions> options,
    TimeProvider time,
    ILogger<LocalRelayWorker> logger) : IHostedService, IDisposable
{
    private static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(250);
    private static readonly TimeSpan PruneInterval = TimeSpan.FromMinutes(1);

    private readonly CancellationTokenSource _stopping = new();
    private readonly CancellationTokenSource _abort = new();
    private readonly SemaphoreSlim _slots = new(options.Value.Concurrency, options.Value.Concurrency);
    private Task _pump = Task.CompletedTask;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _pump = Task.Run(PumpAsync, CancellationToken.None);
        LogStarted(logger, options.Value.Concurrency, queue.Path, queue.Counts().Waiting);
        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        queue.Close(); // the ingest now answers 503
        await _stopping.CancelAsync().ConfigureAwait(false);
        await _pump.ConfigureAwait(false);
        var drained = DrainAsync();
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
        _slots.Dispose();
    }

    private async Task PumpAsync()
    {
        var concurrency = options.Value.Concurrency;
        var lastPrune = time.GetUtcNow();
        while (!_stopping.IsCancellationRequested)
        {
            try
            {
                await _slots.WaitAsync(_stopping.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                break;
            }
            var take = 1;
            while (take < concurrency && _slots.Wait(0))
            {
                take++;
            }
            IReadOnlyList<LeasedEvent> batch = [];
            try
            {
                batch = await queue.LeaseAsync(take, options.Value.LeaseDuration).ConfigureAwait(false);
                if (time.GetUtcNow() - lastPrune > PruneInterval)
                {
                    await queue.PruneDuplicatesAsync().ConfigureAwait(false);
                    lastPrune = time.GetUtcNow();
                }
            }
            catch (Exception ex)
            {
                LogLeaseFailed(logger, ex.GetType().Name, ex.Message);
            }
            if (batch.Count < take)
            {
                _slots.Release(take - batch.Count);
            }
            foreach (var leased in batch)
            {
                _ = Task.Run(() => RelayAsync(leased), CancellationToken.None);
            }
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
            }
        }
    }

    private async Task RelayAsync(LeasedEvent leased)
    {
        try
        {
            // Per event, as the Functions host creates the function per invocation: the typed Klaviyo client is transient.
            var settler = services.GetRequiredService<RelaySettler>();
            var outcome = await settler.RelayAsync(settlement, new RelayDelivery<LeasedEvent>(leased, leased.EventMessageId, leased.Body, leased.Attempt), _abort.Token).ConfigureAwait(false);
            counters.Add(outcome);
        }
        catch (Exception ex)
        {
            // Settlement failed (the database refused the write): the lease lapses and the event is handed out again.
            LogSettleFailed(logger, ex.GetType().Name, leased.EventMessageId);
        }
        finally
        {
            _slots.Release();
        }
    }

    private async Task DrainAsync()
    {
        for (var i = 0; i < options.Value.Concurrency; i++)
        {
            await _slots.WaitAsync(CancellationToken.None).ConfigureAwait(false);
        }
    }

    [LoggerMessage(EventId = 5001, Level = LogLevel.Information, Message = "Local relay started: {Concurrency} consumer(s), queue {Path} ({Waiting} event(s) waiting)")]
    private static partial void LogStarted(ILogger logger, int concurrency, string path, long waiting);

    [LoggerMessage(EventId = 5005, Level = LogLevel.Error, Message = "Could not lease events from the local queue ({ExceptionType}: {Reason}); trying again")]
    private static partial void LogLeaseFailed(ILogger logger, string exceptionType, string reason);

    [LoggerMessage(EventId = 5002, Level = LogLevel.Error, Message = "Could not settle {MessageId} ({ExceptionType}); it is handed out again when its lease lapses")]
    private static partial void LogSettleFailed(ILogger logger, string exceptionType, string messageId);
}
