using System.Diagnostics.Metrics;

namespace Klaviyo.Functions.Diagnostics;

/// <summary>Meter <c>Klaviyo.Relay</c>: one counter per outcome (spec section 6) and Klaviyo call latency. Tags take the
/// relay's enums (dead-letter reason, Klaviyo endpoint) by their names, so diagnostics depends on no feature.</summary>
internal sealed class RelayMetrics
{
    public const string MeterName = "Klaviyo.Relay";
    public const string DeliveredName = "klaviyo.relay.delivered";
    public const string DeadLetteredName = "klaviyo.relay.dead_lettered";
    public const string KlaviyoRequestsName = "klaviyo.relay.klaviyo.requests";
    public const string OrderingHeldName = "klaviyo.relay.ordering.held";
    public const string OrderingValveOpenedName = "klaviyo.relay.ordering.valve_opened";
    public const string OrderingBarrierReadsName = "klaviyo.relay.ordering.barrier_reads";

    private readonly Counter<long> _delivered;
    private readonly Counter<long> _skipped;
    private readonly Counter<long> _retryScheduled;
    private readonly Counter<long> _deadLettered;
    private readonly Counter<long> _inCallRetries;
    private readonly Counter<long> _replayed;
    private readonly Histogram<double> _klaviyoDuration;
    private readonly Counter<long> _heldBack;
    private readonly Histogram<long> _eventsPerCall;
    private readonly Counter<long> _settlementFailed;
    private readonly Histogram<double> _importJobWait;
    private readonly Counter<long> _klaviyoRequests;
    private readonly Counter<long> _gathered;
    private readonly Counter<long> _orderingHeld;
    private readonly Counter<long> _orderingValveOpened;
    private readonly Counter<long> _orderingBarrierReads;

    public RelayMetrics(IMeterFactory meterFactory)
    {
        var meter = meterFactory.Create(MeterName);
        _delivered = meter.CreateCounter<long>(DeliveredName, "{message}", "Messages whose every Klaviyo call answered 2xx.");
        _skipped = meter.CreateCounter<long>("klaviyo.relay.skipped", "{message}", "Messages deliberately not sent (page without SendPageAsTrack, alias).");
        _retryScheduled = meter.CreateCounter<long>("klaviyo.relay.retry_scheduled", "{message}", "Messages scheduled for a later attempt after a transient failure.");
        _deadLettered = meter.CreateCounter<long>(DeadLetteredName, "{message}", "Messages dead-lettered, by reason.");
        _inCallRetries = meter.CreateCounter<long>("klaviyo.relay.klaviyo.in_call_retries", "{retry}", "Extra HTTP tries within one Klaviyo call.");
        _replayed = meter.CreateCounter<long>("klaviyo.relay.replayed", "{message}", "Dead-lettered messages moved back to the queue.");
        _heldBack = meter.CreateCounter<long>("klaviyo.relay.klaviyo.held_back", "{call}", "Klaviyo calls the relay's own rate limiter held back (not sent), by endpoint.");
        _eventsPerCall = meter.CreateHistogram<long>("klaviyo.relay.klaviyo.events_per_call", "{event}", "Events (or profiles) carried by one bulk Klaviyo call, by endpoint.");
        _settlementFailed = meter.CreateCounter<long>("klaviyo.relay.settlement_failed", "{message}", "Messages given back because a settlement call (retry copy, complete, dead letter) failed, by action.");
        _klaviyoDuration = meter.CreateHistogram<double>("klaviyo.relay.klaviyo.duration", "s", "Duration of one Klaviyo call, retries included.");
        _klaviyoRequests = meter.CreateCounter<long>(KlaviyoRequestsName, "{request}", "HTTP requests sent to Klaviyo (every try, in-call retries included), by endpoint and status code (none when no answer came).");
        _gathered = meter.CreateCounter<long>("klaviyo.relay.gathered", "{message}", "Messages held back for a fuller bulk call with the next batch (Relay__GatherWindow).");
        _orderingHeld = meter.CreateCounter<long>(OrderingHeldName, "{message}", "Ordered messages put off (no attempt spent) behind an earlier message of their profile that waits for a retry (spec 10).");
        _orderingValveOpened = meter.CreateCounter<long>(OrderingValveOpenedName, "{key}", "Ordering keys whose valve opened: more than Relay__OrderingMaxHeldPerKey held, ordering off for the key for 20 minutes.");
        _orderingBarrierReads = meter.CreateCounter<long>(OrderingBarrierReadsName, "{read}", "Reads of the ordering barrier's table (Azure): one per distinct ordering key per batch, by result.");
        _importJobWait = meter.CreateHistogram<double>("klaviyo.relay.import_job.wait", "s", "Time from an import job's creation to its settling, by the job's final state.");
    }

    public void Delivered() => _delivered.Add(1);

    public void Skipped() => _skipped.Add(1);

    public void OrderingHeld(int count) => _orderingHeld.Add(count);

    public void OrderingValveOpened() => _orderingValveOpened.Add(1);

    /// <param name="result"><c>ok</c>, or <c>failed</c> when the table could not be read (the key's messages are held).</param>
    public void OrderingBarrierRead(string result) => _orderingBarrierReads.Add(1, new KeyValuePair<string, object?>("result", result));

    public void RetryScheduled(int nextAttempt) => _retryScheduled.Add(1, new KeyValuePair<string, object?>("attempt", nextAttempt));

    public void DeadLettered<TReason>(TReason reason)
        where TReason : struct, Enum => _deadLettered.Add(1, new KeyValuePair<string, object?>("reason", reason.ToString()));

    public void InCallRetry<TEndpoint>(TEndpoint? endpoint)
        where TEndpoint : struct, Enum => _inCallRetries.Add(1, new KeyValuePair<string, object?>("endpoint", endpoint?.ToString()));

    public void Replayed(string? reason) => _replayed.Add(1, new KeyValuePair<string, object?>("reason", reason));

    public void BulkCallSent<TEndpoint>(TEndpoint endpoint, int items)
        where TEndpoint : struct, Enum => _eventsPerCall.Record(items, new KeyValuePair<string, object?>("endpoint", endpoint.ToString()));

    public void Gathered(int messages)
    {
        if (messages > 0)
        {
            _gathered.Add(messages);
        }
    }

    public void SettlementFailed(string action) => _settlementFailed.Add(1, new KeyValuePair<string, object?>("action", action));

    /// <param name="state">The job's final state: <c>complete</c>, <c>cancelled</c>, <c>failed</c>, <c>unreadable</c>, <c>unauthorized</c>, <c>unknown</c>.</param>
    public void ImportJobSettled(string state, TimeSpan wait) =>
        _importJobWait.Record(Math.Max(0, wait.TotalSeconds), new KeyValuePair<string, object?>("state", state));

    public void HeldBack<TEndpoint>(TEndpoint endpoint)
        where TEndpoint : struct, Enum => _heldBack.Add(1, new KeyValuePair<string, object?>("endpoint", endpoint.ToString()));

    /// <summary>One try reached Klaviyo (or failed on the way): what the 429 share per endpoint is computed from.</summary>
    /// <param name="statusCode">null when no answer came (timeout, connection failure).</param>
    public void KlaviyoRequestSent<TEndpoint>(TEndpoint endpoint, int? statusCode)
        where TEndpoint : struct, Enum =>
        _klaviyoRequests.Add(
            1,
            new KeyValuePair<string, object?>("endpoint", endpoint.ToString()),
            new KeyValuePair<string, object?>("http.response.status_code", statusCode));

    /// <param name="statusCode">null when no answer came (timeout, connection failure).</param>
    public void KlaviyoCallCompleted<TEndpoint>(TEndpoint endpoint, int? statusCode, TimeSpan elapsed)
        where TEndpoint : struct, Enum =>
        _klaviyoDuration.Record(
            elapsed.TotalSeconds,
            new KeyValuePair<string, object?>("endpoint", endpoint.ToString()),
            new KeyValuePair<string, object?>("http.response.status_code", statusCode));
}
