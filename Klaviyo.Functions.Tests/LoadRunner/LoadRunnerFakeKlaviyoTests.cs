using System.Net;
using System.Text;
using Klaviyo.Functions.Bulk;
using Klaviyo.Functions.LoadRunner;
using FakeKlaviyo = Klaviyo.Functions.LoadRunner.FakeKlaviyo;
using Klaviyo.Functions.Tests.TestSupport;
using Klaviyo.Functions.Transform;

namespace Klaviyo.Functions.Tests.LoadRunner;

/// <summary>The load runner's fake Klaviyo: bulk endpoints with Klaviyo's limits, RateLimit-* headers, import jobs.</summary>
[TestClass]
public sealed class LoadRunnerFakeKlaviyoTests
{
    public TestContext TestContext { get; set; } = null!;

    private static StringContent JsonApi(string json) => new(json, Encoding.UTF8, "application/vnd.api+json");

    private static string Header(HttpResponseMessage response, string name) =>
        response.Headers.TryGetValues(name, out var values) ? values.Single() : "";

    [TestMethod]
    public async Task BulkEvents_PastTheWindow_429WithRetryAfterAndRateLimitHeadersOnEveryOtherAnswer()
    {
        await using var fake = await FakeKlaviyo.StartAsync(new FakeKlaviyoOptions { EnforceLimits = true });
        using var http = new HttpClient { BaseAddress = new Uri(fake.BaseUrl) };
        var body = BulkBody(3);

        var accepted = new List<HttpResponseMessage>();
        HttpResponseMessage? throttled = null;
        for (var i = 0; i < 200 && throttled is null; i++)
        {
            var answer = await http.PostAsync("/api/event-bulk-create-jobs", JsonApi(body), TestContext.CancellationToken);
            if (answer.StatusCode == HttpStatusCode.TooManyRequests)
            {
                throttled = answer;
            }
            else
            {
                accepted.Add(answer);
            }
        }

        Assert.IsNotNull(throttled, "10/s and 150/min: 200 calls must meet a 429");
        Assert.IsNotNull(throttled.Headers.RetryAfter);
        Assert.AreEqual("", Header(throttled, "RateLimit-Remaining"), "a 429 carries Retry-After, not RateLimit-*");
        Assert.IsTrue(accepted.All(a => a.StatusCode == HttpStatusCode.Accepted && Header(a, "RateLimit-Limit") == "150"
            && int.Parse(Header(a, "RateLimit-Remaining"), System.Globalization.CultureInfo.InvariantCulture) is >= 0 and < 150
            && int.Parse(Header(a, "RateLimit-Reset"), System.Globalization.CultureInfo.InvariantCulture) is >= 1 and <= 60));
        Assert.AreEqual(accepted.Count * 3, fake.BulkEvents);
    }

    [TestMethod]
    public void EndpointCounter_FixedWindows_BurstThenSteadyRefusalsWithTheirRetryAfter()
    {
        var counter = new EndpointCounter(10, 150);
        var start = new DateTimeOffset(2026, 11, 30, 12, 0, 0, TimeSpan.Zero);

        var firstSecond = Enumerable.Range(0, 11).Select(i => counter.TryAdmit(start.AddMilliseconds(i), out _)).ToList();
        var laterSeconds = Enumerable.Range(1, 20).SelectMany(s => Enumerable.Range(0, 10).Select(i => counter.TryAdmit(start.AddSeconds(s).AddMilliseconds(i), out _))).Count(ok => ok);
        var steadyRefused = !counter.TryAdmit(start.AddSeconds(30), out var retryAfter);

        Assert.AreEqual(10, firstSecond.Count(ok => ok));
        Assert.AreEqual(140, laterSeconds, "the minute's 150 are spent after 10 + 140");
        Assert.IsTrue(steadyRefused);
        Assert.AreEqual(30, retryAfter, "until the minute window ends");
        Assert.AreEqual((150, 0, 30), counter.Budget(start.AddSeconds(30)));
    }

    [TestMethod]
    public async Task ImportJob_2Of500ProfilesFailing_CompletesAfterTheDelayAndItsErrorsSettleExactlyThose2()
    {
        await using var fake = await FakeKlaviyo.StartAsync(new FakeKlaviyoOptions { JobDelay = TimeSpan.FromMilliseconds(500), ImportErrorShare = 2 / 500.0 });
        using var http = new HttpClient { BaseAddress = new Uri(fake.BaseUrl) };
        var job = ImportJob(500);

        using var created = await http.PostAsync("/api/profile-bulk-import-jobs", JsonApi(Encoding.UTF8.GetString(job.Request.Body.Span)), TestContext.CancellationToken);
        var createdBody = await created.Content.ReadAsByteArrayAsync(TestContext.CancellationToken);
        var id = System.Text.Json.JsonDocument.Parse(createdBody).RootElement.GetProperty("data").GetProperty("id").GetString();
        var early = ImportJobAnswer.ParseStatus(await http.GetByteArrayAsync($"/api/profile-bulk-import-jobs/{id}", TestContext.CancellationToken));
        await Task.Delay(TimeSpan.FromMilliseconds(700), TestContext.CancellationToken);
        var late = ImportJobAnswer.ParseStatus(await http.GetByteArrayAsync($"/api/profile-bulk-import-jobs/{id}", TestContext.CancellationToken));
        var errors = ImportJobAnswer.ParseErrors(await http.GetByteArrayAsync($"/api/profile-bulk-import-jobs/{id}/import-errors", TestContext.CancellationToken))!;

        Assert.AreEqual(HttpStatusCode.Accepted, created.StatusCode);
        Assert.IsInstanceOfType<ImportJobState.Running>(early);
        Assert.AreEqual(2, Assert.IsInstanceOfType<ImportJobState.Complete>(late).FailedCount);
        var ticket = JobTicket.ForJob(job.Request.Path, id!, job.ItemIdentities!, job.ItemMessages.Select(m => (IReadOnlyList<long>)m.Select(x => (long)x).ToArray()).ToArray(), DateTimeOffset.UnixEpoch);
        var verdicts = ImportJobAnswer.Settle(ticket, late, errors.Errors);
        Assert.AreEqual(2, verdicts.Count(v => v is BulkVerdict.DeadLetter));
        Assert.AreEqual(498, verdicts.Count(v => v is BulkVerdict.Delivered));
        Assert.AreEqual(500, fake.ImportedProfiles);
    }

    [TestMethod]
    public async Task ImportErrors_ManyFailing_PagedWithNextLinks()
    {
        await using var fake = await FakeKlaviyo.StartAsync(new FakeKlaviyoOptions { JobDelay = TimeSpan.Zero, ImportErrorShare = 0.5 });
        using var http = new HttpClient { BaseAddress = new Uri(fake.BaseUrl) };
        var job = ImportJob(500);
        using var created = await http.PostAsync("/api/profile-bulk-import-jobs", JsonApi(Encoding.UTF8.GetString(job.Request.Body.Span)), TestContext.CancellationToken);
        var id = System.Text.Json.JsonDocument.Parse(await created.Content.ReadAsByteArrayAsync(TestContext.CancellationToken)).RootElement.GetProperty("data").GetProperty("id").GetString();

        var all = new List<ImportError>();
        string? next = $"/api/profile-bulk-import-jobs/{id}/import-errors";
        var pages = 0;
        while (next is not null)
        {
            var page = ImportJobAnswer.ParseErrors(await http.GetByteArrayAsync(next, TestContext.CancellationToken))!;
            all.AddRange(page.Errors);
            next = page.Next;
            pages++;
        }

        Assert.AreEqual(3, pages);
        Assert.HasCount(250, all.Select(e => e.ProfileIndex).Distinct());
    }

    [TestMethod]
    public async Task Counters_BulkAndSingleCalls_CountTheItemsEachCarried()
    {
        await using var fake = await FakeKlaviyo.StartAsync(new FakeKlaviyoOptions { EnforceLimits = true });
        using var http = new HttpClient { BaseAddress = new Uri(fake.BaseUrl) };

        (await http.PostAsync("/api/event-bulk-create-jobs", JsonApi(BulkBody(7)), TestContext.CancellationToken)).EnsureSuccessStatusCode();
        (await http.PostAsync("/api/event-bulk-create-jobs", JsonApi(BulkBody(5)), TestContext.CancellationToken)).EnsureSuccessStatusCode();
        (await http.PostAsync("/api/profile-bulk-import-jobs", JsonApi(Encoding.UTF8.GetString(ImportJob(40).Request.Body.Span)), TestContext.CancellationToken)).EnsureSuccessStatusCode();
        (await http.PostAsync("/api/lists/LIST1/relationships/profiles", JsonApi("""{"data":[{"type":"profile","id":"a"},{"type":"profile","id":"b"},{"type":"profile","id":"c"}]}"""), TestContext.CancellationToken)).EnsureSuccessStatusCode();
        (await http.PostAsync("/api/events", JsonApi("""{"data":{"type":"event"}}"""), TestContext.CancellationToken)).EnsureSuccessStatusCode();

        Assert.AreEqual(12, fake.Counters["event-bulk"].ItemCount);
        Assert.AreEqual(2, fake.Counters["event-bulk"].AcceptedCount);
        Assert.AreEqual(40, fake.Counters["profile-bulk-import"].ItemCount);
        Assert.AreEqual(3, fake.Counters["list-members"].ItemCount);
        Assert.AreEqual(1, fake.Counters["events"].ItemCount);
        Assert.HasCount(5, fake.Samples);
        Assert.AreEqual(2, fake.Samples.Count(s => s.Path == "/api/event-bulk-create-jobs"));
    }

    [TestMethod]
    public async Task WaitForReceipt_TokenInALaterBody_CompletesAtThatCallNotBefore()
    {
        await using var fake = await FakeKlaviyo.StartAsync(new FakeKlaviyoOptions());
        using var http = new HttpClient { BaseAddress = new Uri(fake.BaseUrl) };
        var receipt = fake.WaitForReceiptAsync("token-42", TimeSpan.FromSeconds(10));

        await http.PostAsync("/api/events", JsonApi("""{"data":{"attributes":{"unique_id":"token-41"}}}"""), TestContext.CancellationToken);
        var early = receipt.IsCompleted;
        var before = DateTimeOffset.UtcNow;
        await http.PostAsync("/api/events", JsonApi("""{"data":{"attributes":{"unique_id":"token-42"}}}"""), TestContext.CancellationToken);
        var at = await receipt;

        Assert.IsFalse(early);
        Assert.IsTrue(at >= before.AddMilliseconds(-50) && at <= DateTimeOffset.UtcNow);
        await Assert.ThrowsExactlyAsync<TimeoutException>(() => fake.WaitForReceiptAsync("never-sent", TimeSpan.FromMilliseconds(200)));
    }

    [TestMethod]
    [DataRow(0.0, 0)]
    [DataRow(0.004, 2)]
    [DataRow(0.1, 50)]
    [DataRow(1.0, 500)]
    public void FailingProfiles_Share_IsThatManySpreadEvenly(double share, int expected)
    {
        var failing = FakeKlaviyo.FailingProfiles(500, share);

        Assert.HasCount(expected, failing);
        Assert.IsTrue(failing.All(k => k is >= 0 and < 500));
    }

    private static string BulkBody(int events)
    {
        var pieces = Enumerable.Range(0, events)
            .Select(i => ((EventParts)((TransformResult.Planned)Transforms.Run($$"""{"type":"track","messageId":"m-{{i}}","userId":"u-1","event":"Clicked"}""")).Parts).Events.Single())
            .ToList();
        return Encoding.UTF8.GetString(EventsBulkBuilder.Build(pieces).Single().Request.Body.Span);
    }

    private static CarriedCall ImportJob(int count)
    {
        var profiles = Enumerable.Range(0, count)
            .Select(i => ((ProfileParts)((TransformResult.Planned)Transforms.Run("{\"type\":\"identify\",\"userId\":\"u-" + i + "\",\"traits\":{\"email\":\"p" + i + "@example.com\"}}")).Parts).Profile)
            .ToList();
        var call = ProfileImportJobBuilder.Build(null, profiles).Single();
        return new CarriedCall(call.Request, call.Items.Select(k => (IReadOnlyList<int>)[k]).ToArray(), call.Items.Select(k => profiles[k].IdentityText).ToArray());
    }
}
