using Azure.Messaging.ServiceBus;
using Klaviyo.Functions.Queue;
using Klaviyo.Functions.Relay;
using Klaviyo.Functions.Settings;
using Klaviyo.Functions.Tests.TestSupport;
using Microsoft.Azure.Functions.Worker;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;

namespace Klaviyo.Functions.Tests.Relay;

/// <summary>The queue trigger end to end: real events, the real transformer and HttpClient pipeline, a fake Klaviyo
/// on loopback, and the settlement calls and scheduled copies recorded.</summary>
[TestClass]
public sealed class RelayFunctionTests
{
    private const string Track = """{"type":"track","event":"Order Completed","userId":"u1","messageId":"m-1","timestamp":"2026-11-01T10:00:00Z","properties":{"revenue":12.5,"currency":"EUR"}}""";
    private const string IdentifyWithList = """{"type":"identify","userId":"u1","messageId":"m-2","traits":{"email":"a@example.com","properties":{"listId":"Xy12"}}}""";

    public TestContext TestContext { get; set; } = null!;

    private async Task<(RecordingMessageActions Actions, RelayTestHost Host)> RunAsync(FakeKlaviyo klaviyo, string json, string messageId, int? attempt = null, IDictionary<string, string?>? settings = null, RelayTestHost? host = null)
    {
        host ??= RelayTestHost.Create(klaviyo.BaseUrl, settings);
        var actions = new RecordingMessageActions();
        await host.Function.RunAsync(RelayTestHost.Message(json, messageId, attempt), actions, TestContext.CancellationToken);
        return (actions, host);
    }

    [TestMethod]
    public async Task Relay_On2xx_CompletesAndSendsTheEventOnce()
    {
        using var klaviyo = FakeKlaviyo.Start().Answer("/api/events", 202);
        var (actions, host) = await RunAsync(klaviyo, Track, "m-1");
        using var _ = host;

        Assert.AreEqual(new Settlement("Complete", "m-1", null, null), actions.Calls.Single());
        var received = klaviyo.Received.Single();
        Assert.AreEqual("/api/events", received.Path);
        Assert.Contains("\"unique_id\":\"m-1\"", received.Body);
        Assert.IsEmpty(host.Queue.Scheduled);
    }

    [TestMethod]
    public async Task Relay_OnPersistent503_SchedulesCopyWithNextAttemptAndCompletesOriginal()
    {
        using var klaviyo = FakeKlaviyo.Start().Answer("/api/events", 503);
        var (actions, host) = await RunAsync(klaviyo, Track, "m-1", attempt: 3);
        using var _ = host;

        Assert.AreEqual(new Settlement("Complete", "m-1", null, null), actions.Calls.Single());
        var (copy, at) = host.Queue.Scheduled.Single();
        Assert.AreEqual("m-1\u001Fattempt-4", copy.MessageId);
        Assert.AreEqual(4, copy.Attempt);
        Assert.AreEqual("track", copy.Subject);
        Assert.AreEqual(Track, System.Text.Encoding.UTF8.GetString(copy.Body.Span));
        Assert.AreEqual(host.Time!.GetUtcNow() + TimeSpan.FromMinutes(10), at, "attempt 3 failed: 10 min back-off from now");
        Assert.HasCount(3, klaviyo.Received);
    }

    [TestMethod]
    public async Task Relay_On400WithKlaviyoError_DeadLettersKlaviyoRejectedWithDetailAndPointer()
    {
        using var klaviyo = FakeKlaviyo.Start().Answer("/api/events", 400, FakeKlaviyo.ErrorAnswer(400, "invalid", "Invalid input.", "/data/attributes/metric/data/attributes/name"));
        var (actions, host) = await RunAsync(klaviyo, Track, "m-1");
        using var _ = host;

        Assert.AreEqual(
            new Settlement("DeadLetter", "m-1", "KlaviyoRejected", "POST /api/events answered 400: invalid: Invalid input. (pointer /data/attributes/metric/data/attributes/name)"),
            actions.Calls.Single());
        Assert.HasCount(1, klaviyo.Received);
        Assert.IsEmpty(host.Queue.Scheduled, "a dead-lettered event is not also retried");
    }

    [TestMethod]
    [DataRow("not json at all")]
    [DataRow("[1,2]")]
    public async Task Relay_BodyThatIsNotAnEvent_DeadLettersMalformedMessageWithoutCallingKlaviyo(string body)
    {
        using var klaviyo = FakeKlaviyo.Start();
        var (actions, host) = await RunAsync(klaviyo, body, "m-1");
        using var _ = host;

        Assert.AreEqual("MalformedMessage", actions.Calls.Single().Reason);
        Assert.IsEmpty(klaviyo.Received);
    }

    [TestMethod]
    public async Task Relay_EventWithoutIdentifier_DeadLettersInvalidEventNamingTheRule()
    {
        using var klaviyo = FakeKlaviyo.Start();
        var (actions, host) = await RunAsync(klaviyo, """{"type":"track","event":"Clicked","messageId":"m-1"}""", "m-1");
        using var _ = host;

        var settlement = actions.Calls.Single();
        Assert.AreEqual("InvalidEvent", settlement.Reason);
        Assert.Contains("no user identifier", settlement.Description!);
        Assert.IsEmpty(klaviyo.Received);
    }

    [TestMethod]
    public async Task Relay_PageWithoutSendPageAsTrack_CompletesAsSkipped()
    {
        using var klaviyo = FakeKlaviyo.Start();
        var (actions, host) = await RunAsync(klaviyo, """{"type":"page","name":"Home","userId":"u1","messageId":"m-1"}""", "m-1");
        using var _ = host;

        Assert.AreEqual("Complete", actions.Calls.Single().Action);
        Assert.IsEmpty(klaviyo.Received);
        Assert.Contains("skipped", host.AllLogText());
    }

    [TestMethod]
    public async Task Relay_IdentifyWhoseSecondCallFails_RetriesTheWholeEvent()
    {
        using var klaviyo = FakeKlaviyo.Start()
            .Answer("/api/profile-import", 200, FakeKlaviyo.ProfileAnswer("01P"))
            .Answer("/api/lists/Xy12/relationships/profiles", 503);
        var (first, host) = await RunAsync(klaviyo, IdentifyWithList, "m-2");
        using var _ = host;
        var (copy, _) = host.Queue.Scheduled.Single();

        klaviyo.Server.ResetMappings();
        klaviyo.Answer("/api/profile-import", 200, FakeKlaviyo.ProfileAnswer("01P")).Answer("/api/lists/Xy12/relationships/profiles", 204);
        var second = new RecordingMessageActions();
        var redelivered = RelayTestHost.Message(System.Text.Encoding.UTF8.GetString(copy.Body.Span), copy.MessageId, copy.Attempt, "identify");
        await host.Function.RunAsync(redelivered, second, TestContext.CancellationToken);

        Assert.AreEqual("Complete", first.Calls.Single().Action);
        Assert.AreEqual(new Settlement("Complete", "m-2\u001Fattempt-2", null, null), second.Calls.Single());
        Assert.AreEqual(2, klaviyo.ReceivedPaths.Count(p => p == "/api/profile-import"), "profile-import runs again on the retry");
        Assert.Contains("\"id\":\"01P\"", klaviyo.Received[^1].Body);
        Assert.Contains("Event m-2 delivered on attempt 2", host.AllLogText());
    }

    [TestMethod]
    public async Task Relay_WhenSchedulingFails_WaitsTheGiveBackDelayOnTheClockThenAbandonsWithTheFailureAndCompletesNothing()
    {
        using var klaviyo = FakeKlaviyo.Start().Answer("/api/events", 503);
        using var host = RelayTestHost.Create(klaviyo.BaseUrl);
        host.Queue.Failure = new InvalidOperationException("Service Bus unavailable: secret-ish detail");
        using var failed = new MetricCollector<long>(host.Services.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>(), "Klaviyo.Relay", "klaviyo.relay.settlement_failed");
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var settler = new RelaySettler(host.Services.GetRequiredService<BulkRelayProcessor>(), host.Services.GetRequiredService<ImportJobTracker>(), host.Policy(time), Microsoft.Extensions.Options.Options.Create(new RelayOptions()), time, host.Services.GetRequiredService<ILogger<RelaySettler>>(), host.Services.GetRequiredService<global::Klaviyo.Functions.Diagnostics.RelayMetrics>());
        var actions = new RecordingMessageActions();

        var run = new RelayFunction(settler, host.Queue).RunAsync(RelayTestHost.Message(Track, "m-1"), actions, TestContext.CancellationToken);
        while (!host.AllLogText().Contains("is given back after", StringComparison.Ordinal))
        {
            Assert.IsFalse(run.IsCompleted, "the run ended without giving the message back");
            await Task.Delay(10, TestContext.CancellationToken);
        }
        var failedAt = time.GetUtcNow();
        while (actions.Calls.Count == 0)
        {
            Assert.IsLessThan(TimeSpan.FromSeconds(5), time.GetUtcNow() - failedAt, "never given back");
            time.Advance(TimeSpan.FromMilliseconds(100));
            await Task.Delay(10, TestContext.CancellationToken);
        }
        var waited = time.GetUtcNow() - failedAt;
        await run.WaitAsync(TimeSpan.FromSeconds(10), TestContext.CancellationToken);

        Assert.IsGreaterThanOrEqualTo(TimeSpan.FromSeconds(1.9), waited, "not given back at once: about 2 s on the clock");
        Assert.IsLessThanOrEqualTo(TimeSpan.FromSeconds(2.1), waited);
        Assert.AreEqual(new Settlement("Abandon", "m-1", null, null), actions.Calls.Single(), "not completed: it comes back and is retried");
        Assert.AreEqual("retry: InvalidOperationException", actions.AbandonedWith.Single()![RelaySettler.SettlementFailureProperty]);
        Assert.IsEmpty(host.Queue.Scheduled);
        var measurement = failed.GetMeasurementSnapshot().Single();
        Assert.AreEqual("retry", measurement.Tags["action"]);
        var logged = host.Logs.GetSnapshot().Where(r => r.Message.Contains("given back", StringComparison.Ordinal)).ToList();
        Assert.HasCount(1, logged, "logged once");
        Assert.DoesNotContain("secret-ish", logged[0].Message, "only the exception type, never its message");
    }

    [TestMethod]
    public async Task Relay_WhenTheCompleteAfterTheCopyFails_AbandonsAndTheDuplicateDeliveryCarriesTheSameUniqueId()
    {
        using var klaviyo = FakeKlaviyo.Start().Answer("/api/events", 503);
        using var host = RelayTestHost.Create(klaviyo.BaseUrl);
        var actions = new RecordingMessageActions();
        actions.Throws["Complete"] = new InvalidOperationException("lock lost");
        var before = host.Time!.GetUtcNow();

        await host.Function.RunAsync(RelayTestHost.Message(Track, "m-1"), actions, TestContext.CancellationToken);

        Assert.AreEqual("Complete,Abandon", string.Join(',', actions.Calls.Select(c => c.Action)));
        Assert.AreEqual("retry: InvalidOperationException", actions.AbandonedWith.Single()![RelaySettler.SettlementFailureProperty]);
        Assert.IsGreaterThanOrEqualTo(before + RelaySettler.GiveBackDelay, host.Time.GetUtcNow());
        var (copy, _) = host.Queue.Scheduled.Single();

        // Both come back: the abandoned original (same attempt) and the scheduled copy. Klaviyo keeps one event per unique_id.
        klaviyo.Server.ResetMappings();
        klaviyo.Answer("/api/events", 202);
        var original = new RecordingMessageActions();
        var theCopy = new RecordingMessageActions();
        await host.Function.RunAsync(RelayTestHost.Message(Track, "m-1"), original, TestContext.CancellationToken);
        await host.Function.RunAsync(RelayTestHost.Message(System.Text.Encoding.UTF8.GetString(copy.Body.Span), copy.MessageId, copy.Attempt), theCopy, TestContext.CancellationToken);

        Assert.AreEqual(new Settlement("Complete", "m-1", null, null), original.Calls.Single());
        Assert.AreEqual(new Settlement("Complete", "m-1\u001Fattempt-2", null, null), theCopy.Calls.Single());
        var delivered = klaviyo.Received.Skip(klaviyo.Received.Count - 2).ToList();
        Assert.IsTrue(delivered.All(r => r.Body.Contains("\"unique_id\":\"m-1\"", StringComparison.Ordinal)), "both sends carry the event's unique_id");
    }

    [TestMethod]
    public async Task Relay_WhenTheDeadLetterCallFails_AbandonsWithTheFailureInsteadOfThrowing()
    {
        using var klaviyo = FakeKlaviyo.Start().Answer("/api/events", 400, FakeKlaviyo.ErrorAnswer(400, "invalid", "Invalid input.", "/data"));
        using var host = RelayTestHost.Create(klaviyo.BaseUrl);
        var actions = new RecordingMessageActions();
        actions.Throws["DeadLetter"] = new InvalidOperationException("broker busy");
        var message = RelayTestHost.Message(Track, "m-1", attempt: 3);

        var outcome = (await host.Settler.RelayBatchAsync(new ServiceBusSettlement(actions, host.Queue), [ServiceBusSettlement.Delivery(message)], TestContext.CancellationToken)).Single();

        Assert.AreEqual(new RelayOutcome.RetryLater(RelaySettler.GiveBackDelay, 3, "given back after a settlement failure (dead-letter: InvalidOperationException)"), outcome, "counted as a retry of the same attempt, not as a dead letter");
        Assert.AreEqual("DeadLetter,Abandon", string.Join(',', actions.Calls.Select(c => c.Action)));
        Assert.AreEqual("dead-letter: InvalidOperationException", actions.AbandonedWith.Single()![RelaySettler.SettlementFailureProperty]);
        Assert.IsEmpty(host.Queue.Scheduled);
    }

    [TestMethod]
    public async Task Relay_WhenTheGiveBackFailsToo_LeavesThatMessageToItsLockAndStillSettlesTheRestOfTheBatch()
    {
        using var klaviyo = FakeKlaviyo.Start().Answer("/api/events", 202).Answer("/api/profile-import", 400, FakeKlaviyo.ErrorAnswer(400, "invalid", "Invalid input.", "/data"));
        using var host = RelayTestHost.Create(klaviyo.BaseUrl);
        var actions = new RecordingMessageActions();
        actions.Throws["Complete"] = new InvalidOperationException("broker down");
        actions.Throws["Abandon"] = new TimeoutException("broker down");

        // Throwing would make the host abandon the batch's unsettled messages; the others here are settled already.
        await host.Function.RunAsync([RelayTestHost.Message(Track, "m-1"), RelayTestHost.Message(SampleEvents.Identify, "m-2", subject: "identify")], actions, TestContext.CancellationToken);

        Assert.AreEqual("Abandon,Complete,DeadLetter", string.Join(',', actions.Calls.Select(c => c.Action).Order(StringComparer.Ordinal)));
        Assert.Contains("Could not give back m-1 (TimeoutException); it is delivered again when its lock lapses", host.AllLogText());
    }

    [TestMethod]
    public async Task Relay_AttemptProperty_IsReadFromTheMessage()
    {
        using var klaviyo = FakeKlaviyo.Start().Answer("/api/events", 503);
        var (_, host) = await RunAsync(klaviyo, Track, "m-1\u001Fattempt-5", attempt: 5);
        using var __ = host;

        var copy = host.Queue.Scheduled.Single().Event;
        Assert.AreEqual(new QueuedEvent("m-1\u001Fattempt-6", "track", copy.Body, 6, "m-1"), copy);
    }

    [TestMethod]
    public async Task Relay_RetryThroughServiceBus_CopyHasOneAttemptSuffixAndTheEventsOwnId()
    {
        using var klaviyo = FakeKlaviyo.Start().Answer("/api/events", 503);
        using var host = RelayTestHost.Create(klaviyo.BaseUrl);
        var sender = new RecordingSender();
        var function = new RelayFunction(host.Settler, new ServiceBusEventQueue(sender));

        await function.RunAsync(RelayTestHost.Message(Track, "m-1"), new RecordingMessageActions(), TestContext.CancellationToken);
        var first = sender.Scheduled.Single().Message;
        var redelivered = ServiceBusModelFactory.ServiceBusReceivedMessage(
            body: first.Body, messageId: first.MessageId, subject: first.Subject, properties: first.ApplicationProperties,
            lockTokenGuid: Guid.NewGuid(), deliveryCount: 1);
        await function.RunAsync(redelivered, new RecordingMessageActions(), TestContext.CancellationToken);

        Assert.AreEqual("m-1\u001Fattempt-2", first.MessageId);
        Assert.AreEqual("m-1", first.ApplicationProperties[MessageProperties.EventMessageId]);
        var second = sender.Scheduled[1].Message;
        Assert.AreEqual("m-1\u001Fattempt-3", second.MessageId);
        Assert.AreEqual("m-1", second.ApplicationProperties[MessageProperties.EventMessageId]);
        Assert.Contains("Event m-1 attempt 2 failed transiently", host.AllLogText());
    }

    [TestMethod]
    public async Task Relay_HostStopsMidPlan_SchedulesTheRetryAndCompletesInsteadOfLeavingItToTheLock()
    {
        using var klaviyo = FakeKlaviyo.Start().Answer("/api/events", 202, delay: TimeSpan.FromSeconds(4));
        using var host = RelayTestHost.Create(klaviyo.BaseUrl);
        var actions = new RecordingMessageActions();
        using var stopping = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));

        await host.Function.RunAsync(RelayTestHost.Message(Track, "m-1"), actions, stopping.Token);

        Assert.AreEqual(new Settlement("Complete", "m-1", null, null), actions.Calls.Single());
        var (copy, at) = host.Queue.Scheduled.Single();
        Assert.AreEqual(new QueuedEvent("m-1\u001Fattempt-2", "track", copy.Body, 2, "m-1"), copy);
        Assert.IsLessThanOrEqualTo(DateTimeOffset.UtcNow, at, "due at once: another instance takes it");
        Assert.Contains("interrupted by a host stop", host.AllLogText());
    }

    [TestMethod]
    public async Task Relay_SettlementThatHangs_IsCancelledAfterTheSettlementTimeout()
    {
        using var klaviyo = FakeKlaviyo.Start().Answer("/api/events", 202);
        using var host = RelayTestHost.Create(klaviyo.BaseUrl);
        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider(DateTimeOffset.UtcNow);
        var settler = new RelaySettler(host.Services.GetRequiredService<BulkRelayProcessor>(), host.Services.GetRequiredService<ImportJobTracker>(), host.Policy(time), Microsoft.Extensions.Options.Options.Create(new RelayOptions()), time, Microsoft.Extensions.Logging.Abstractions.NullLogger<RelaySettler>.Instance, host.Services.GetRequiredService<global::Klaviyo.Functions.Diagnostics.RelayMetrics>());
        var actions = new HangingMessageActions();

        var run = new RelayFunction(settler, host.Queue).RunAsync(RelayTestHost.Message(Track, "m-1"), actions, TestContext.CancellationToken);
        await actions.Entered.Task.WaitAsync(TimeSpan.FromSeconds(10), TestContext.CancellationToken);
        time.Advance(RelaySettler.SettlementTimeout - TimeSpan.FromSeconds(1));
        Assert.IsFalse(run.IsCompleted);
        time.Advance(TimeSpan.FromSeconds(1));

        await Assert.ThrowsAsync<OperationCanceledException>(() => run.WaitAsync(TimeSpan.FromSeconds(10), TestContext.CancellationToken));
    }

    [TestMethod]
    public async Task Relay_BugInTheRelaysOwnCode_RetriesLikeATransientFailure()
    {
        using var klaviyo = FakeKlaviyo.Start().Answer("/api/events", 202);
        using var host = RelayTestHost.Create(klaviyo.BaseUrl, configure: Throwing);
        var actions = new RecordingMessageActions();

        await host.Function.RunAsync(RelayTestHost.Message(Track, "m-1", attempt: 3), actions, TestContext.CancellationToken);

        Assert.AreEqual(new Settlement("Complete", "m-1", null, null), actions.Calls.Single());
        Assert.AreEqual(new QueuedEvent("m-1\u001Fattempt-4", "track", host.Queue.Scheduled.Single().Event.Body, 4, "m-1"), host.Queue.Scheduled.Single().Event);
        Assert.IsEmpty(klaviyo.Received);
    }

    [TestMethod]
    public async Task Relay_BugInTheRelaysOwnCodeOnTheLastAttempt_DeadLettersProcessingFailedWithTheExceptionType()
    {
        using var klaviyo = FakeKlaviyo.Start().Answer("/api/events", 202);
        using var host = RelayTestHost.Create(klaviyo.BaseUrl, configure: Throwing);
        var actions = new RecordingMessageActions();

        await host.Function.RunAsync(RelayTestHost.Message(Track, "m-1\u001Fattempt-10", attempt: 10), actions, TestContext.CancellationToken);

        var settlement = actions.Calls.Single();
        Assert.AreEqual("DeadLetter", settlement.Action);
        Assert.AreEqual("ProcessingFailed", settlement.Reason);
        Assert.Contains("InvalidOperationException", settlement.Description!);
        Assert.DoesNotContain(RelayTestHost.ApiKey, settlement.Description!, "a bug's message never carries the key into a dead letter");
        Assert.IsEmpty(host.Queue.Scheduled);
    }

    /// <summary>A fault inside the relay's own pipeline (not Klaviyo's, not the network's): stands in for a bug.</summary>
    private static void Throwing(Microsoft.Extensions.DependencyInjection.IServiceCollection services) =>
        Microsoft.Extensions.DependencyInjection.HttpClientBuilderExtensions.AddHttpMessageHandler(
            Microsoft.Extensions.DependencyInjection.HttpClientFactoryServiceCollectionExtensions.AddHttpClient<global::Klaviyo.Functions.Klaviyo.KlaviyoClient>(services),
            () => new ThrowingHandler());

    private sealed class ThrowingHandler : DelegatingHandler
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken) =>
            throw new InvalidOperationException("a bug in the relay holding " + RelayTestHost.ApiKey);
    }

    /// <summary>Message actions whose completion never answers until cancelled (a broker that stalls).</summary>
    private sealed class HangingMessageActions : ServiceBusMessageActions
    {
        public TaskCompletionSource Entered { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public override async Task CompleteMessageAsync(ServiceBusReceivedMessage message, CancellationToken cancellationToken = default)
        {
            Entered.TrySetResult();
            await Task.Delay(Timeout.Infinite, cancellationToken);
        }
    }
}
