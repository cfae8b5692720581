using Klaviyo.Functions.Diagnostics;
using Klaviyo.Functions.Klaviyo;
using Klaviyo.Functions.Settings;
using Klaviyo.Functions.Transform;
using Microsoft.Extensions.Logging;
using Klaviyo.Functions.Relay;
using Klaviyo.Functions.Tests.TestSupport;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using System.Diagnostics.Metrics;

namespace Klaviyo.Functions.Tests.Relay;

/// <summary>Plan execution against the fake Klaviyo, with hand-built plans (the transformer's are covered end to end in RelayFunctionTests).</summary>
[TestClass]
public sealed class RelayProcessorTests
{
    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    public async Task Execute_IdentifyWithList_PassesProfileIdToTheListCall()
    {
        using var klaviyo = FakeKlaviyo.Start()
            .Answer("/api/profile-import", 201, FakeKlaviyo.ProfileAnswer("01PROFILE"))
            .Answer("/api/lists/Xy12/relationships/profiles", 204);
        using var host = RelayTestHost.Create(klaviyo.BaseUrl);

        var outcome = await host.Processor.ExecuteAsync(Plans.IdentifyWithList(), "m-1", 1, TestContext.CancellationToken);

        Assert.AreEqual(new RelayOutcome.Delivered(2), outcome);
        Assert.AreSequenceEqual(["/api/profile-import", "/api/lists/Xy12/relationships/profiles"], klaviyo.ReceivedPaths);
        Assert.Contains("\"id\":\"01PROFILE\"", klaviyo.Received[1].Body);
    }

    [TestMethod]
    public async Task Execute_ProfileImportWithoutDataId_DeadLettersKlaviyoRejectedAndStops()
    {
        using var klaviyo = FakeKlaviyo.Start().Answer("/api/profile-import", 200, """{"data":null}""");
        using var host = RelayTestHost.Create(klaviyo.BaseUrl);

        var outcome = await host.Processor.ExecuteAsync(Plans.IdentifyWithList(), "m-1", 1, TestContext.CancellationToken);

        var dead = Assert.IsInstanceOfType<RelayOutcome.DeadLetter>(outcome);
        Assert.AreEqual(DeadLetterReason.KlaviyoRejected, dead.Reason);
        Assert.Contains("without data.id", dead.Description);
        Assert.AreSequenceEqual(["/api/profile-import"], klaviyo.ReceivedPaths);
    }

    [TestMethod]
    public async Task Execute_IdentifyWhoseSecondCallFails_RetriesThePlanAsAWhole()
    {
        using var klaviyo = FakeKlaviyo.Start()
            .Answer("/api/profile-import", 200, FakeKlaviyo.ProfileAnswer("P1"))
            .Answer("/api/lists/Xy12/relationships/profiles", 503);
        using var host = RelayTestHost.Create(klaviyo.BaseUrl);

        var first = await host.Processor.ExecuteAsync(Plans.IdentifyWithList(), "m-1", 1, TestContext.CancellationToken);
        klaviyo.Server.ResetMappings();
        klaviyo.Answer("/api/profile-import", 200, FakeKlaviyo.ProfileAnswer("P1")).Answer("/api/lists/Xy12/relationships/profiles", 204);
        var second = await host.Processor.ExecuteAsync(Plans.IdentifyWithList(), "m-1", 2, TestContext.CancellationToken);

        Assert.AreEqual(new RelayOutcome.RetryLater(TimeSpan.FromSeconds(30), 2, ((RelayOutcome.RetryLater)first).Cause), first);
        Assert.AreEqual(new RelayOutcome.Delivered(2), second);
        Assert.AreEqual(2, klaviyo.ReceivedPaths.Count(p => p == "/api/profile-import"), "the whole plan runs again");
        Assert.AreEqual(4, klaviyo.ReceivedPaths.Count(p => p.StartsWith("/api/lists/", StringComparison.Ordinal)), "3 tries in the first attempt, 1 in the second");
    }

    [TestMethod]
    public async Task Execute_429WithRetryAfter_RetryLaterNoSoonerThanHeader()
    {
        using var klaviyo = FakeKlaviyo.Start().Answer("/api/events", 429, null, new Dictionary<string, string> { ["Retry-After"] = "120" });
        using var host = RelayTestHost.Create(klaviyo.BaseUrl);

        var outcome = await host.Processor.ExecuteAsync(Plans.Track(), "m-1", 1, TestContext.CancellationToken);

        var retry = Assert.IsInstanceOfType<RelayOutcome.RetryLater>(outcome);
        Assert.AreEqual(TimeSpan.FromSeconds(120), retry.Delay);
        Assert.AreEqual(2, retry.NextAttempt);
    }

    [TestMethod]
    public async Task Execute_TransientOnLastAttempt_DeadLettersRetriesExhausted()
    {
        using var klaviyo = FakeKlaviyo.Start().Answer("/api/events", 503);
        using var host = RelayTestHost.Create(klaviyo.BaseUrl, new Dictionary<string, string?> { ["Relay:MaxAttempts"] = "3" });

        var outcome = await host.Processor.ExecuteAsync(Plans.Track(), "m-1", 3, TestContext.CancellationToken);

        var dead = Assert.IsInstanceOfType<RelayOutcome.DeadLetter>(outcome);
        Assert.AreEqual(DeadLetterReason.RetriesExhausted, dead.Reason);
        Assert.StartsWith("3 attempt(s) failed; last: POST /api/events answered 503", dead.Description);
    }

    [TestMethod]
    public async Task Execute_400WithKlaviyoError_DeadLettersKlaviyoRejectedWithDetailAndPointer()
    {
        using var klaviyo = FakeKlaviyo.Start().Answer("/api/events", 400, FakeKlaviyo.ErrorAnswer(400, "invalid", "Invalid phone number format.", "/data/attributes/profile/data/attributes/phone_number"));
        using var host = RelayTestHost.Create(klaviyo.BaseUrl);

        var outcome = await host.Processor.ExecuteAsync(Plans.Track(), "m-1", 1, TestContext.CancellationToken);

        Assert.AreEqual(
            new RelayOutcome.DeadLetter(DeadLetterReason.KlaviyoRejected, "POST /api/events answered 400: invalid: Invalid phone number format. (pointer /data/attributes/profile/data/attributes/phone_number)"),
            outcome);
    }

    [TestMethod]
    public async Task Execute_Unauthorized_DeadLettersKlaviyoUnauthorized()
    {
        // Which statuses are Unauthorized is the client's (KlaviyoClientTests); this is what the processor makes of it.
        const int status = 403;
        using var klaviyo = FakeKlaviyo.Start().Answer("/api/events", status, FakeKlaviyo.ErrorAnswer(status, "permission_denied", "You do not have permission to perform this action.", null));
        using var host = RelayTestHost.Create(klaviyo.BaseUrl);

        var outcome = await host.Processor.ExecuteAsync(Plans.Track(), "m-1", 1, TestContext.CancellationToken);

        var dead = Assert.IsInstanceOfType<RelayOutcome.DeadLetter>(outcome);
        Assert.AreEqual(DeadLetterReason.KlaviyoUnauthorized, dead.Reason);
        Assert.Contains($"answered {status}: permission_denied", dead.Description);
    }

    [TestMethod]
    public async Task Execute_EveryFailureKind_NeverLogsOrDescribesTheKey()
    {
        using var klaviyo = FakeKlaviyo.Start()
            .Answer("/api/events", 400, FakeKlaviyo.ErrorAnswer(400, "invalid", $"bad key {RelayTestHost.ApiKey}", $"/{RelayTestHost.ApiKey}"))
            .Answer("/api/profile-import", 401, FakeKlaviyo.ErrorAnswer(401, "not_authenticated", $"Klaviyo-API-Key {RelayTestHost.ApiKey} unknown", null))
            .Answer("/api/lists/Xy12/relationships/profiles", 503, FakeKlaviyo.ErrorAnswer(503, "down", RelayTestHost.ApiKey, null));
        using var host = RelayTestHost.Create(klaviyo.BaseUrl);

        var outcomes = new List<RelayOutcome>
        {
            await host.Processor.ExecuteAsync(Plans.Track("m-400"), "m-400", 1, TestContext.CancellationToken),
            await host.Processor.ExecuteAsync(Plans.IdentifyWithList(), "m-401", 1, TestContext.CancellationToken),
        };
        var listOnly = new RequestPlan([PlanStep.Fixed(Plans.IdentifyWithList().Steps[1].Build("P1"))]);
        outcomes.Add(await host.Processor.ExecuteAsync(listOnly, "m-503", 10, TestContext.CancellationToken));

        var descriptions = outcomes.Cast<RelayOutcome.DeadLetter>().Select(d => d.Description).ToList();
        Assert.HasCount(3, descriptions);
        foreach (var description in descriptions)
        {
            Assert.DoesNotContain(RelayTestHost.ApiKey, description);
        }
        var logs = host.AllLogText();
        Assert.Contains("m-400", logs);
        Assert.Contains("m-503", logs);
        Assert.DoesNotContain(RelayTestHost.ApiKey, logs);
        Assert.DoesNotContain(RelayTestHost.ApiKey["pk_".Length..], logs);
    }

    [TestMethod]
    public async Task Execute_Outcomes_AreCountedByReason()
    {
        using var klaviyo = FakeKlaviyo.Start().Answer("/api/events", 422, FakeKlaviyo.ErrorAnswer(422, "invalid", "no", null)).Answer("/api/profile-import", 200, FakeKlaviyo.ProfileAnswer("P"));
        using var host = RelayTestHost.Create(klaviyo.BaseUrl);
        var meterFactory = host.Services.GetRequiredService<IMeterFactory>();
        using var deadLettered = new MetricCollector<long>(meterFactory, RelayMetrics.MeterName, "klaviyo.relay.dead_lettered");
        using var delivered = new MetricCollector<long>(meterFactory, RelayMetrics.MeterName, "klaviyo.relay.delivered");
        using var duration = new MetricCollector<double>(meterFactory, RelayMetrics.MeterName, "klaviyo.relay.klaviyo.duration");

        await host.Processor.ExecuteAsync(Plans.Track(), "m-1", 1, TestContext.CancellationToken);
        await host.Processor.ExecuteAsync(new([Plans.IdentifyWithList().Steps[0]]), "m-2", 1, TestContext.CancellationToken);

        Assert.AreEqual("KlaviyoRejected", deadLettered.GetMeasurementSnapshot().Single().Tags["reason"]);
        Assert.AreEqual(1, delivered.GetMeasurementSnapshot().Single().Value);
        Assert.HasCount(2, duration.GetMeasurementSnapshot());
    }

    private static RelayProcessor WithBrokenTransform(RelayTestHost host, int maxAttempts) => new(
        new KlaviyoTransformer(new KlaviyoOptions { PrivateApiKey = RelayTestHost.ApiKey }, new BrokenClock()),
        host.Client,
        new OutcomePolicy(
            new RetrySchedule(() => 0.5),
            Microsoft.Extensions.Options.Options.Create(new RelayOptions { MaxAttempts = maxAttempts }),
            Microsoft.Extensions.Options.Options.Create(new KlaviyoOptions { PrivateApiKey = RelayTestHost.ApiKey }),
            host.Services.GetRequiredService<RelayMetrics>(),
            host.Services.GetRequiredService<TimeProvider>(),
            host.Services.GetRequiredService<ILogger<OutcomePolicy>>()));

    [TestMethod]
    public async Task Process_BugInTheTransformWithAttemptsLeft_RetriesLaterNotInvalidEvent()
    {
        using var klaviyo = FakeKlaviyo.Start();
        using var host = RelayTestHost.Create(klaviyo.BaseUrl);
        var processor = WithBrokenTransform(host, maxAttempts: 3);

        var outcome = await processor.ProcessAsync("""{"type":"track","userId":"u","event":"Paid"}"""u8.ToArray(), "m-bug", 2, TestContext.CancellationToken);

        var retry = Assert.IsInstanceOfType<RelayOutcome.RetryLater>(outcome);
        Assert.AreEqual(3, retry.NextAttempt);
        Assert.AreEqual(TimeSpan.FromMinutes(2), retry.Delay);
        Assert.Contains("System.InvalidOperationException: " + BrokenClock.Message, retry.Cause);
        Assert.IsEmpty(klaviyo.ReceivedPaths);
        Assert.Contains(r => r.Exception is InvalidOperationException && r.Message.Contains("m-bug", StringComparison.Ordinal), host.Logs.GetSnapshot(), "the bug is logged with its exception");
    }

    [TestMethod]
    public async Task Process_BugInTheTransformOnLastAttempt_DeadLettersProcessingFailedWithTypeAndMessage()
    {
        using var klaviyo = FakeKlaviyo.Start();
        using var host = RelayTestHost.Create(klaviyo.BaseUrl);
        var meterFactory = host.Services.GetRequiredService<IMeterFactory>();
        using var deadLettered = new MetricCollector<long>(meterFactory, RelayMetrics.MeterName, "klaviyo.relay.dead_lettered");
        var processor = WithBrokenTransform(host, maxAttempts: 3);

        var outcome = await processor.ProcessAsync("""{"type":"track","userId":"u","event":"Paid"}"""u8.ToArray(), "m-bug", 3, TestContext.CancellationToken);

        var dead = Assert.IsInstanceOfType<RelayOutcome.DeadLetter>(outcome);
        Assert.AreEqual(DeadLetterReason.ProcessingFailed, dead.Reason);
        Assert.Contains("System.InvalidOperationException: " + BrokenClock.Message, dead.Description);
        Assert.AreEqual("ProcessingFailed", deadLettered.GetMeasurementSnapshot().Single().Tags["reason"]);
    }

    [TestMethod]
    public async Task Execute_PlanBuiltWrong_IsABugRetriedNotAnException()
    {
        using var klaviyo = FakeKlaviyo.Start();
        using var host = RelayTestHost.Create(klaviyo.BaseUrl);
        // A list step with no profile-import before it cannot be built: a defect in the plan, not in the event.
        var plan = new RequestPlan([Plans.IdentifyWithList().Steps[1]]);

        var outcome = await host.Processor.ExecuteAsync(plan, "m-1", 1, TestContext.CancellationToken);

        var retry = Assert.IsInstanceOfType<RelayOutcome.RetryLater>(outcome);
        Assert.AreEqual(2, retry.NextAttempt);
        Assert.Contains("InvalidOperationException", retry.Cause);
        Assert.IsEmpty(klaviyo.ReceivedPaths);
    }

    [TestMethod]
    public void DescribeBug_MessageHoldingTheKey_CutsTheKeyOut()
    {
        var description = OutcomePolicy.DescribeBug(new InvalidOperationException($"bad header {RelayTestHost.ApiKey}"), RelayTestHost.ApiKey);

        Assert.AreEqual("System.InvalidOperationException: bad header [redacted]", description);
    }
}
