using Klaviyo.Functions.Klaviyo;
using Klaviyo.Functions.Relay;
using Klaviyo.Functions.Tests.TestSupport;
using Microsoft.Extensions.DependencyInjection;

namespace Klaviyo.Functions.Tests.Klaviyo;

/// <summary>Spec 6: a call the relay's own limiter holds back is not a Klaviyo failure and spends no attempt.</summary>
[TestClass]
public sealed class HeldBackTests
{
    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    public async Task Execute_HeldBackByTheRelaysLimiter_RetryLaterWithTheAttemptCountUnchanged()
    {
        using var klaviyo = FakeKlaviyo.Start().Answer("/api/events", 202);
        using var host = RelayTestHost.Create(klaviyo.BaseUrl);
        host.Services.GetRequiredService<KlaviyoRateLimits>().Pause(KlaviyoEndpoint.CreateEvent, TimeSpan.FromSeconds(30));

        var outcome = await host.Processor.ExecuteAsync(Plans.Track(), "m-held", 4, TestContext.CancellationToken);

        var retry = Assert.IsInstanceOfType<RelayOutcome.RetryLater>(outcome);
        Assert.AreEqual(4, retry.NextAttempt, "no attempt spent: Klaviyo never saw the call");
        Assert.IsGreaterThan(TimeSpan.FromSeconds(25), retry.Delay);
        Assert.IsEmpty(klaviyo.Received);
        Assert.DoesNotContain(3003, host.Logs.GetSnapshot().Select(r => r.Id.Id).ToList(), "held-back work is counted, not logged event by event");
    }

    [TestMethod]
    public async Task Execute_HeldBackOnTheLastAttempt_NeverRetriesExhausted()
    {
        using var klaviyo = FakeKlaviyo.Start().Answer("/api/events", 202);
        using var host = RelayTestHost.Create(klaviyo.BaseUrl, new Dictionary<string, string?> { ["Relay:MaxAttempts"] = "3" });
        host.Services.GetRequiredService<KlaviyoRateLimits>().Pause(KlaviyoEndpoint.CreateEvent, TimeSpan.FromSeconds(30));

        var outcome = await host.Processor.ExecuteAsync(Plans.Track(), "m-last", 3, TestContext.CancellationToken);

        Assert.AreEqual(3, Assert.IsInstanceOfType<RelayOutcome.RetryLater>(outcome).NextAttempt);
    }

    [TestMethod]
    public async Task Send_KlaviyoRefusedThenTheRetryHeldBack_IsKlaviyosFailureAndSpendsTheAttempt()
    {
        // 1000 instances: one list call a minute. The first try gets Klaviyo's 503; the in-call retry is then held back
        // by the spent window. Klaviyo did fail this call, so it is transient (an attempt), not a free hold-back.
        using var klaviyo = FakeKlaviyo.Start().Answer("/api/lists/L1/relationships/profiles", 503);
        using var host = RelayTestHost.Create(klaviyo.BaseUrl, new Dictionary<string, string?> { ["Relay:ExpectedInstanceCount"] = "1000" });

        var response = await host.Client.SendAsync(Plans.IdentifyWithList("L1").Steps[1].Build("P1"), TestContext.CancellationToken);

        var transient = Assert.IsInstanceOfType<KlaviyoResponse.Transient>(response);
        Assert.AreEqual(503, transient.StatusCode);
        Assert.Contains("held back", transient.Description);
        Assert.HasCount(1, klaviyo.Received);
    }
}
