using Klaviyo.Functions.Klaviyo;
using Klaviyo.Functions.Settings;
using Klaviyo.Functions.Tests.TestSupport;
using Klaviyo.Functions.Relay;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;

namespace Klaviyo.Functions.Tests.Klaviyo;

[TestClass]
public sealed class KlaviyoRateLimitsTests
{
    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    [DataRow(KlaviyoEndpoint.CreateEvent, 1, 350, 3500)]
    [DataRow(KlaviyoEndpoint.CreateEvent, 4, 87, 875)]
    [DataRow(KlaviyoEndpoint.ProfileImport, 10, 7, 75)]
    [DataRow(KlaviyoEndpoint.SubscribeProfiles, 1, 75, 750)]
    [DataRow(KlaviyoEndpoint.AddProfilesToList, 20, 1, 7)]
    [DataRow(KlaviyoEndpoint.AddProfilesToList, 1000, 1, 1)]
    [DataRow(KlaviyoEndpoint.RequestDeletion, 1, 3, 60)]
    [DataRow(KlaviyoEndpoint.RequestDeletion, 2, 1, 30)]
    [DataRow(KlaviyoEndpoint.GetProfiles, 4, 18, 187)]
    public void InstanceShare_DividesPublishedLimitsByInstances(object endpointCase, int instances, int perSecond, int perMinute)
    {
        var endpoint = (KlaviyoEndpoint)endpointCase;
        Assert.AreEqual((perSecond, perMinute), KlaviyoRateLimits.InstanceShare(endpoint, instances));
    }

    [TestMethod]
    public async Task Limiter_SteadyWindowSpent_HoldsTheCallBackWithoutCallingKlaviyo()
    {
        using var klaviyo = FakeKlaviyo.Start().Answer("/api/lists/L1/relationships/profiles", 204);
        using var host = RelayTestHost.Create(klaviyo.BaseUrl, new Dictionary<string, string?> { ["Relay:ExpectedInstanceCount"] = "1000" });
        var listAdd = Plans.IdentifyWithList("L1").Steps[1].Build("P1");

        var first = await host.Client.SendAsync(listAdd, TestContext.CancellationToken);
        var second = await host.Client.SendAsync(listAdd, TestContext.CancellationToken);

        Assert.IsInstanceOfType<KlaviyoResponse.Success>(first);
        var held = Assert.IsInstanceOfType<KlaviyoResponse.HeldBack>(second, "a held-back call is a value of its own, not a made-up 429");
        Assert.IsGreaterThan(TimeSpan.FromSeconds(5), held.RetryAfter, "a spent minute window is waited out by a scheduled retry");
        Assert.Contains("rate limiter", held.Description);
        Assert.HasCount(1, klaviyo.Received);
    }

    [TestMethod]
    public async Task Limiter_After429_PausesOnlyThatEndpoint()
    {
        using var klaviyo = FakeKlaviyo.Start()
            .Answer("/api/events", 429, null, new Dictionary<string, string> { ["Retry-After"] = "120" })
            .Answer("/api/profile-import", 200, FakeKlaviyo.ProfileAnswer("P1"));
        using var host = RelayTestHost.Create(klaviyo.BaseUrl);

        await host.Client.SendAsync(Plans.Event("a"), TestContext.CancellationToken);
        var paused = await host.Client.SendAsync(Plans.Event("b"), TestContext.CancellationToken);
        var other = await host.Client.SendAsync(Plans.IdentifyWithList().Steps[0].Build(), TestContext.CancellationToken);

        var held = Assert.IsInstanceOfType<KlaviyoResponse.HeldBack>(paused);
        Assert.IsGreaterThan(TimeSpan.FromSeconds(100), held.RetryAfter);
        Assert.IsInstanceOfType<KlaviyoResponse.Success>(other);
        Assert.AreSequenceEqual(["/api/events", "/api/profile-import"], klaviyo.ReceivedPaths);
        Assert.IsGreaterThan(TimeSpan.FromSeconds(100), host.Services.GetRequiredService<KlaviyoRateLimits>().PausedFor(KlaviyoEndpoint.CreateEvent));
    }

    [TestMethod]
    public async Task Limiter_WithAPauseEndingWithinASecond_WaitsItOutAndCallsKlaviyo()
    {
        // No in-call retries: a held-back 429 would be the final answer, so only waiting out the tail can deliver.
        using var klaviyo = FakeKlaviyo.Start().Answer("/api/events", 202);
        using var host = RelayTestHost.Create(klaviyo.BaseUrl, new Dictionary<string, string?> { ["Relay:MaxInCallRetries"] = "0" });
        host.Services.GetRequiredService<KlaviyoRateLimits>().Pause(KlaviyoEndpoint.CreateEvent, TimeSpan.FromMilliseconds(300));
        var start = host.Time!.GetUtcNow();

        var response = await host.Client.SendAsync(Plans.Event(), TestContext.CancellationToken);

        Assert.IsInstanceOfType<KlaviyoResponse.Success>(response);
        Assert.IsGreaterThanOrEqualTo(TimeSpan.FromMilliseconds(300), host.Time.GetUtcNow() - start, "the call went out before the pause ended");
        Assert.HasCount(1, klaviyo.Received);
    }

    [TestMethod]
    public async Task Limiter_CallsRefusedByTheBurstWindow_DoNotSpendTheMinuteWindow()
    {
        // 15 instances: list membership gets 1/s (one more may queue) and 10/min. The clock moves only when told.
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        using var limits = new KlaviyoRateLimits(Options.Create(new RelayOptions { ExpectedInstanceCount = 15 }), time);

        var acquiring = Enumerable.Range(0, 12).Select(_ => limits.AcquireAsync(KlaviyoEndpoint.AddProfilesToList, TestContext.CancellationToken).AsTask()).ToList();
        time.Advance(KlaviyoRateLimits.BurstWindow);
        var burst = await Task.WhenAll(acquiring);
        var acquiringLater = limits.AcquireAsync(KlaviyoEndpoint.AddProfilesToList, TestContext.CancellationToken).AsTask();
        time.Advance(KlaviyoRateLimits.BurstWindow);
        using var later = await acquiringLater;

        Assert.AreEqual(2, burst.Count(l => l.IsAcquired), "one at once, one after queueing for the next second");
        Assert.IsTrue(later.IsAcquired, "the ten refused calls must not have used up the minute's ten permits");
        foreach (var lease in burst)
        {
            lease.Dispose();
        }
    }

    private static Dictionary<string, string> Budget(int limit, int remaining, int reset) => new()
    {
        ["RateLimit-Limit"] = limit.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["RateLimit-Remaining"] = remaining.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["RateLimit-Reset"] = reset.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };

    [TestMethod]
    public async Task Limiter_KlaviyoReportsTheBudgetSpent_HoldsBackUntilItsResetWithoutCallingKlaviyo()
    {
        // Another instance or integration spent the account's minute: the relay's own share (untouched) cannot know.
        using var klaviyo = FakeKlaviyo.Start().Answer("/api/event-bulk-create-jobs", 202, null, Budget(150, 0, 40));
        using var host = RelayTestHost.Create(klaviyo.BaseUrl);
        var request = new global::Klaviyo.Functions.Klaviyo.KlaviyoRequest(KlaviyoEndpoint.BulkCreateEvents, KlaviyoApi.BulkCreateEventsPath, "{}"u8.ToArray());

        var first = await host.Client.SendAsync(request, TestContext.CancellationToken);
        var second = await host.Client.SendAsync(request, TestContext.CancellationToken);

        Assert.IsInstanceOfType<KlaviyoResponse.Success>(first);
        var held = Assert.IsInstanceOfType<KlaviyoResponse.HeldBack>(second);
        Assert.IsGreaterThan(TimeSpan.FromSeconds(30), held.RetryAfter);
        Assert.Contains("RateLimit-Remaining", held.Description);
        Assert.HasCount(1, klaviyo.Received);
    }

    [TestMethod]
    public async Task Limiter_KlaviyoReportsMoreBudgetThanTheShare_PacesAgainstKlaviyosBudget()
    {
        // 1000 instances: the start share is 1 list call a minute. Klaviyo's answers show 120 of 150 left for 60 s and
        // the count falling by this instance's calls alone: after one spaced slot it paces against the whole budget.
        using var klaviyo = FakeKlaviyo.Start().AnswerInTurnWithHeaders("/api/lists/L1/relationships/profiles",
            [.. Enumerable.Range(0, 60).Select(i => (204, (string?)null, (IDictionary<string, string>?)Budget(150, 120 - i, 60)))]);
        using var host = RelayTestHost.Create(klaviyo.BaseUrl, new Dictionary<string, string?> { ["Relay:ExpectedInstanceCount"] = "1000" });
        var listAdd = Plans.IdentifyWithList("L1").Steps[1].Build("P1");
        var start = host.Time!.GetUtcNow();

        var responses = new List<KlaviyoResponse>();
        while (host.Time.GetUtcNow() - start < TimeSpan.FromSeconds(30))
        {
            var response = await host.Client.SendAsync(listAdd, TestContext.CancellationToken);
            responses.Add(response);
            if (response is KlaviyoResponse.HeldBack held)
            {
                host.Time.Advance(held.RetryAfter);
            }
        }

        Assert.IsTrue(responses.All(r => r is KlaviyoResponse.Success or KlaviyoResponse.HeldBack), string.Join(", ", responses));
        Assert.IsGreaterThanOrEqualTo(30, klaviyo.Received.Count, "about two a second once the answers showed the account to itself, not 1 a minute");
    }

    [TestMethod]
    public async Task Limiter_BudgetAlmostSpent_SpreadsTheRestOverTheTimeToReset()
    {
        // 2 calls left for 3 s: the next call may go at once, the one after only ~1.5 s later, so it is held back.
        using var klaviyo = FakeKlaviyo.Start().Answer("/api/event-bulk-create-jobs", 202, null, Budget(150, 2, 3));
        using var host = RelayTestHost.Create(klaviyo.BaseUrl);
        var limits = host.Services.GetRequiredService<KlaviyoRateLimits>();
        limits.Observe(KlaviyoEndpoint.BulkCreateEvents, 150, 2, TimeSpan.FromSeconds(3));

        var first = limits.ReserveAccountSlot(KlaviyoEndpoint.BulkCreateEvents, TimeSpan.FromSeconds(1));
        var second = limits.ReserveAccountSlot(KlaviyoEndpoint.BulkCreateEvents, TimeSpan.FromSeconds(1));
        var third = limits.ReserveAccountSlot(KlaviyoEndpoint.BulkCreateEvents, TimeSpan.FromSeconds(5));

        Assert.AreEqual(new AccountSlot(true, TimeSpan.Zero, false), first);
        Assert.IsFalse(second.Reserved, "the second of two calls left for 3 s is ~1.5 s away: held back, nothing taken");
        Assert.IsFalse(second.Spent);
        Assert.IsGreaterThan(TimeSpan.FromSeconds(1.2), second.Wait, "back when its slot comes");
        Assert.IsTrue(third.Reserved);
        Assert.IsGreaterThan(TimeSpan.FromSeconds(1.2), third.Wait);
    }

    [TestMethod]
    public async Task Limiter_BudgetSpreadNotSpent_HeldBackCallComesBackAtItsSlotNotAtTheReset()
    {
        // Every answer says 2 of 150 are left for 60 s: after a call, the next slot is ~30 s away and the reset 60 s.
        // Holding the call back until the reset (as before) left half the budget unused: a backlog drained at half the
        // rate Klaviyo allowed.
        using var klaviyo = FakeKlaviyo.Start().Answer("/api/event-bulk-create-jobs", 202, null, Budget(150, 2, 60));
        using var host = RelayTestHost.Create(klaviyo.BaseUrl);
        var request = new KlaviyoRequest(KlaviyoEndpoint.BulkCreateEvents, "/api/event-bulk-create-jobs", "{}"u8.ToArray());

        var first = await host.Client.SendAsync(request, TestContext.CancellationToken);
        var second = await host.Client.SendAsync(request, TestContext.CancellationToken);
        var third = await host.Client.SendAsync(request, TestContext.CancellationToken);

        Assert.IsInstanceOfType<KlaviyoResponse.Success>(first);
        Assert.IsInstanceOfType<KlaviyoResponse.Success>(second, "the first call under a known budget goes at once");
        var held = Assert.IsInstanceOfType<KlaviyoResponse.HeldBack>(third);
        Assert.IsGreaterThan(TimeSpan.FromSeconds(20), held.RetryAfter);
        Assert.IsLessThan(TimeSpan.FromSeconds(40), held.RetryAfter, "back at its slot, not at the reset 60 s away");
        Assert.Contains("the next slot is later", held.Description);
        Assert.HasCount(2, klaviyo.Received);
    }

    [TestMethod]
    [DataRow(KlaviyoEndpoint.BulkCreateEvents, 10, 150)]
    [DataRow(KlaviyoEndpoint.BulkImportProfiles, 10, 150)]
    [DataRow(KlaviyoEndpoint.GetImportJob, 10, 150)]
    [DataRow(KlaviyoEndpoint.GetImportErrors, 10, 150)]
    public void PublishedLimit_BulkAndJobEndpoints_HaveTheirOwnWindows(object endpointCase, int perSecond, int perMinute)
    {
        var endpoint = (KlaviyoEndpoint)endpointCase;
        Assert.AreEqual((perSecond, perMinute), KlaviyoRateLimits.PublishedLimit(endpoint));
    }

    [TestMethod]
    public async Task Limiter_OneEndpointsWindowSpent_OtherBulkEndpointsStillSend()
    {
        using var klaviyo = FakeKlaviyo.Start().Answer("/api/event-bulk-create-jobs", 202).Answer("/api/profile-bulk-import-jobs", 202);
        using var host = RelayTestHost.Create(klaviyo.BaseUrl, new Dictionary<string, string?> { ["Relay:ExpectedInstanceCount"] = "1000" });
        var events = new global::Klaviyo.Functions.Klaviyo.KlaviyoRequest(KlaviyoEndpoint.BulkCreateEvents, KlaviyoApi.BulkCreateEventsPath, "{}"u8.ToArray());
        var profiles = new global::Klaviyo.Functions.Klaviyo.KlaviyoRequest(KlaviyoEndpoint.BulkImportProfiles, KlaviyoApi.BulkImportProfilesPath, "{}"u8.ToArray());

        await host.Client.SendAsync(events, TestContext.CancellationToken);
        var heldEvents = await host.Client.SendAsync(events, TestContext.CancellationToken);
        var sentProfiles = await host.Client.SendAsync(profiles, TestContext.CancellationToken);

        Assert.IsInstanceOfType<KlaviyoResponse.HeldBack>(heldEvents);
        Assert.IsInstanceOfType<KlaviyoResponse.Success>(sentProfiles);
    }
}
