using System.Diagnostics.Metrics;
using Klaviyo.Functions.Bulk;
using Klaviyo.Functions.Diagnostics;
using Klaviyo.Functions.Klaviyo;
using Klaviyo.Functions.Relay;
using Klaviyo.Functions.Tests.TestSupport;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;

namespace Klaviyo.Functions.Tests.Bulk;

/// <summary>Spec 8.3: asking Klaviyo how an import job went, against the fake Klaviyo on 127.0.0.1.</summary>
[TestClass]
public sealed class ImportJobClientTests
{
    private const string JobId = "01JOB";
    private const string StatusPath = "/api/profile-bulk-import-jobs/01JOB";
    private const string ErrorsPath = "/api/profile-bulk-import-jobs/01JOB/import-errors";

    private static JobTicket? s_ticket500;

    public TestContext TestContext { get; set; } = null!;

    /// <summary>500 profiles p{k}@example.com / u-{k}; item k carries sequences 1000 + 2k and 1001 + 2k.</summary>
    private static JobTicket Ticket500 => s_ticket500 ??= JobTicketTests.Ticket(500, JobId);

    /// <param name="failed">null: the answer carries no <c>failed_count</c>, so the import errors must be read.</param>
    private static string Status(string status, int? failed = 0) =>
        $$$"""{"data":{"type":"profile-bulk-import-job","id":"{{{JobId}}}","attributes":{"status":"{{{status}}}","total_count":500,{{{(failed is { } f ? $"\"completed_count\":{500 - f},\"failed_count\":{f}," : "")}}}"created_at":"2026-12-01T00:00:00+00:00"},"links":{"self":"x"}""" + "}}";

    private const string PhoneError = """{"type":"import-error","id":"e1","attributes":{"code":"invalid","title":"Invalid input","detail":"phone_number is not valid","source":{"pointer":"/data/attributes/profiles/data/17/attributes/phone_number"}}}""";

    private const string EmailError = """{"type":"import-error","id":"e2","attributes":{"code":"invalid","title":"Invalid input","detail":"email is not valid","source":{},"original_payload":{"email":"p321@example.com","external_id":"u-321"}}}""";

    private static string ErrorsPage(string? next, params string[] errors) =>
        $$$"""{"data":[{{{string.Join(",", errors)}}}],"links":{"self":"x","next":{{{(next is null ? "null" : "\"" + next + "\"")}}}}}""";

    private static (ImportJobClient Client, RelayTestHost Host) Start(FakeKlaviyo klaviyo)
    {
        var host = RelayTestHost.Create(klaviyo.BaseUrl);
        return (ActivatorUtilities.CreateInstance<ImportJobClient>(host.Services), host);
    }

    private static IReadOnlyList<BulkVerdict> Settled(ImportJobCheck check, string state)
    {
        var settled = Assert.IsInstanceOfType<ImportJobCheck.Settled>(check);
        Assert.AreEqual(state, settled.State, settled.PerItem.FirstOrDefault()?.ToString());
        Assert.HasCount(500, settled.PerItem);
        return settled.PerItem;
    }

    [TestMethod]
    [DataRow("queued")]
    [DataRow("processing")]
    public async Task Check_JobRunning_RunningWithNothingSettled(string status)
    {
        using var klaviyo = FakeKlaviyo.Start().AnswerGet(StatusPath, 200, Status(status));
        var (client, host) = Start(klaviyo);
        using var _ = host;

        var check = await client.CheckAsync(Ticket500, TestContext.CancellationToken);

        Assert.AreEqual(new ImportJobCheck.Running(status), check);
        var get = klaviyo.Received.Single();
        Assert.AreEqual("GET", get.Method);
        Assert.AreEqual(StatusPath, get.Path);
        Assert.AreEqual("", get.Body);
        Assert.IsFalse(get.Headers.ContainsKey("Content-Type"), "a GET carries no content");
        Assert.AreEqual($"Klaviyo-API-Key {RelayTestHost.ApiKey}", get.Headers["Authorization"]);
    }

    [TestMethod]
    public async Task Check_Complete2Of500Failing_ExactlyThose2DeadLetteredWithKlaviyosDetailThe498Delivered()
    {
        using var klaviyo = FakeKlaviyo.Start()
            .AnswerGet(StatusPath, 200, Status("complete", failed: 2))
            .AnswerGet(ErrorsPath, 200, ErrorsPage(null, PhoneError, EmailError));
        var (client, host) = Start(klaviyo);
        using var _ = host;
        var meters = host.Services.GetRequiredService<IMeterFactory>();
        using var wait = new MetricCollector<double>(meters, RelayMetrics.MeterName, "klaviyo.relay.import_job.wait");
        using var calls = new MetricCollector<double>(meters, RelayMetrics.MeterName, "klaviyo.relay.klaviyo.duration");
        var ticket = Ticket500 with { CreatedAt = host.Time!.GetUtcNow() - TimeSpan.FromSeconds(90) };

        var verdicts = Settled(await client.CheckAsync(ticket, TestContext.CancellationToken), "complete");

        Assert.AreEqual(498, verdicts.Count(v => v is BulkVerdict.Delivered));
        var phone = Assert.IsInstanceOfType<BulkVerdict.DeadLetter>(verdicts[17]);
        Assert.AreEqual(BulkRefusal.KlaviyoRejected, phone.Reason);
        Assert.Contains("phone_number is not valid", phone.Description);
        Assert.Contains("/data/attributes/profiles/data/17", phone.Description);
        var email = Assert.IsInstanceOfType<BulkVerdict.DeadLetter>(verdicts[321]);
        Assert.Contains("email is not valid", email.Description);
        Assert.Contains("import job 01JOB", email.Description);
        Assert.AreSequenceEqual(new[] { $"GET {StatusPath}", $"GET {ErrorsPath}" }, klaviyo.Received.Select(r => $"{r.Method} {r.Path}").ToArray());
        var measured = wait.GetMeasurementSnapshot().Single();
        Assert.AreEqual(90, measured.Value, 0.001);
        Assert.AreEqual("complete", measured.Tags["state"]);
        Assert.AreSequenceEqual(new[] { "GetImportJob", "GetImportErrors" }, calls.GetMeasurementSnapshot().Select(m => (string)m.Tags["endpoint"]!).ToArray(), "Klaviyo calls are counted per endpoint, GETs too");
    }

    [TestMethod]
    public async Task Check_CompleteWithNoFailedProfile_EveryProfileDeliveredWithoutReadingTheErrors()
    {
        using var klaviyo = FakeKlaviyo.Start().AnswerGet(StatusPath, 200, Status("complete", failed: 0));
        var (client, host) = Start(klaviyo);
        using var _ = host;

        var verdicts = Settled(await client.CheckAsync(Ticket500, TestContext.CancellationToken), "complete");

        Assert.IsTrue(verdicts.All(v => v is BulkVerdict.Delivered));
        Assert.AreSequenceEqual(new[] { StatusPath }, klaviyo.ReceivedPaths.ToArray(), "no import-errors GET: Klaviyo counted no failure");
        klaviyo.AssertNoUnexpectedCalls();
    }

    [TestMethod]
    public async Task Check_ImportErrors_AsksForFullPagesOf100()
    {
        using var klaviyo = FakeKlaviyo.Start()
            .AnswerGet(StatusPath, 200, Status("complete", failed: null))
            .AnswerGet(ErrorsPath, 200, ErrorsPage(null), query: ("page[size]", "100"));
        var (client, host) = Start(klaviyo);
        using var _ = host;

        var verdicts = Settled(await client.CheckAsync(Ticket500, TestContext.CancellationToken), "complete");

        Assert.IsTrue(verdicts.All(v => v is BulkVerdict.Delivered));
    }

    [TestMethod]
    public async Task Check_ImportErrorsOverTwoPages_FollowsLinksNextAndSettlesBoth()
    {
        using var klaviyo = FakeKlaviyo.Start().AnswerGet(StatusPath, 200, Status("complete", failed: 2));
        var next = $"{klaviyo.BaseUrl}{ErrorsPath}?page[cursor]=c2&page[size]=100";
        klaviyo.AnswerGet(ErrorsPath, 200, ErrorsPage(next, PhoneError))
            .AnswerGet(ErrorsPath, 200, ErrorsPage(null, EmailError), query: ("page[cursor]", "c2"));
        var (client, host) = Start(klaviyo);
        using var _ = host;

        var verdicts = Settled(await client.CheckAsync(Ticket500, TestContext.CancellationToken), "complete");

        Assert.IsInstanceOfType<BulkVerdict.DeadLetter>(verdicts[17]);
        Assert.IsInstanceOfType<BulkVerdict.DeadLetter>(verdicts[321]);
        Assert.AreEqual(498, verdicts.Count(v => v is BulkVerdict.Delivered));
        Assert.AreEqual(2, klaviyo.Received.Count(r => r.Path == ErrorsPath));
    }

    [TestMethod]
    [DataRow("http://127.0.0.2:{port}/api/profile-bulk-import-jobs/01JOB/import-errors?page[cursor]=c2", "another host", DisplayName = "another host")]
    [DataRow("http://localhost:{other}/api/profile-bulk-import-jobs/01JOB/import-errors?page[cursor]=c2", "another host", DisplayName = "another port")]
    [DataRow("https://localhost:{port}/api/profile-bulk-import-jobs/01JOB/import-errors?page[cursor]=c2", "another host", DisplayName = "another scheme")]
    [DataRow("http://user:pw@localhost:{port}/api/profile-bulk-import-jobs/01JOB/import-errors?page[cursor]=c2", "another host", DisplayName = "user info")]
    [DataRow("{base}/api/profile-bulk-import-jobs/OTHER/import-errors?page[cursor]=c2", "another path", DisplayName = "another job")]
    [DataRow("{base}/api/lists/L1/relationships/profiles", "another path", DisplayName = "another endpoint")]
    [DataRow("/api/profile-bulk-import-jobs/01JOB/import-errors?page[cursor]=c2", "not an absolute http(s) URL", DisplayName = "relative")]
    public async Task Check_NextLinkLeavingTheJobsImportErrors_EveryMessageRetriesLaterAndTheLinkIsNotFollowed(string template, string why)
    {
        using var klaviyo = FakeKlaviyo.Start().AnswerGet(StatusPath, 200, Status("complete", failed: 2));
        var port = new Uri(klaviyo.BaseUrl).Port;
        var next = template.Replace("{base}", klaviyo.BaseUrl, StringComparison.Ordinal).Replace("{port}", port.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal)
            .Replace("{other}", FakeKlaviyo.FreePort().ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal);
        klaviyo.AnswerGet(ErrorsPath, 200, ErrorsPage(next, PhoneError));
        var (client, host) = Start(klaviyo);
        using var _ = host;

        var verdicts = Settled(await client.CheckAsync(Ticket500, TestContext.CancellationToken), "unreadable");

        Assert.IsTrue(verdicts.All(v => v is BulkVerdict.RetryLater { SpendsAttempt: true }), "never complete, nor dead-letter, on an unread page");
        Assert.Contains(why, ((BulkVerdict.RetryLater)verdicts[0]).Cause);
        Assert.ContainsSingle(klaviyo.Received.Where(r => r.Path == ErrorsPath));
        Assert.HasCount(2, klaviyo.Received);
    }

    [TestMethod]
    public async Task Check_NextLinkBackToAPageAlreadyRead_RetriesLaterInsteadOfLooping()
    {
        using var klaviyo = FakeKlaviyo.Start().AnswerGet(StatusPath, 200, Status("complete", failed: 1));
        klaviyo.AnswerGet(ErrorsPath, 200, ErrorsPage($"{klaviyo.BaseUrl}{ErrorsPath}?page[cursor]=same", PhoneError));
        var (client, host) = Start(klaviyo);
        using var _ = host;

        var verdicts = Settled(await client.CheckAsync(Ticket500, TestContext.CancellationToken), "unreadable");

        Assert.IsTrue(verdicts.All(v => v is BulkVerdict.RetryLater));
        Assert.Contains("already read", ((BulkVerdict.RetryLater)verdicts[0]).Cause);
        Assert.AreEqual(2, klaviyo.Received.Count(r => r.Path == ErrorsPath));
    }

    [TestMethod]
    public async Task Check_NextLinksPastThePageCap_RetriesLaterAfterTheCap()
    {
        using var klaviyo = FakeKlaviyo.Start().AnswerGet(StatusPath, 200, Status("complete", failed: null));
        klaviyo.AnswerGet(ErrorsPath, 200, ErrorsPage($"{klaviyo.BaseUrl}{ErrorsPath}?page[cursor]=p0"));
        for (var page = 0; page < ImportJobClient.MaxErrorPages; page++)
        {
            klaviyo.AnswerGet(ErrorsPath, 200, ErrorsPage($"{klaviyo.BaseUrl}{ErrorsPath}?page[cursor]=p{page + 1}"), query: ("page[cursor]", $"p{page}"));
        }
        var (client, host) = Start(klaviyo);
        using var _ = host;

        var verdicts = Settled(await client.CheckAsync(Ticket500, TestContext.CancellationToken), "unreadable");

        Assert.IsTrue(verdicts.All(v => v is BulkVerdict.RetryLater));
        Assert.Contains($"past {ImportJobClient.MaxErrorPages} pages", ((BulkVerdict.RetryLater)verdicts[0]).Cause);
        Assert.AreEqual(ImportJobClient.MaxErrorPages, klaviyo.Received.Count(r => r.Path == ErrorsPath));
    }

    [TestMethod]
    [DataRow("not json", DisplayName = "not JSON")]
    [DataRow("""{"data":{"attributes":{}}}""", DisplayName = "no status")]
    [DataRow("""{"data":{"attributes":{"status":7}}}""", DisplayName = "status not a string")]
    [DataRow("""{"data":{"attributes":{"status":"done"}}}""", DisplayName = "unknown status")]
    [DataRow("", DisplayName = "empty body")]
    public async Task Check_MalformedStatus_EveryMessageRetriesLaterNeverDelivered(string body)
    {
        using var klaviyo = FakeKlaviyo.Start().AnswerGet(StatusPath, 200, body);
        var (client, host) = Start(klaviyo);
        using var _ = host;

        var verdicts = Settled(await client.CheckAsync(Ticket500, TestContext.CancellationToken), "unreadable");

        Assert.IsTrue(verdicts.All(v => v is BulkVerdict.RetryLater { SpendsAttempt: true }));
        Assert.HasCount(1, klaviyo.Received, "no import errors are asked for a job not known to be complete");
    }

    [TestMethod]
    [DataRow("not json", DisplayName = "not JSON")]
    [DataRow("""{"errors":[]}""", DisplayName = "no data")]
    [DataRow("""{"data":[{"type":"import-error"}]}""", DisplayName = "an error without attributes")]
    [DataRow("""{"data":{}}""", DisplayName = "data an object")]
    public async Task Check_MalformedErrorsPage_EveryMessageRetriesLaterNeverDelivered(string body)
    {
        using var klaviyo = FakeKlaviyo.Start().AnswerGet(StatusPath, 200, Status("complete", failed: null)).AnswerGet(ErrorsPath, 200, body);
        var (client, host) = Start(klaviyo);
        using var _ = host;

        var verdicts = Settled(await client.CheckAsync(Ticket500, TestContext.CancellationToken), "unreadable");

        Assert.IsTrue(verdicts.All(v => v is BulkVerdict.RetryLater { SpendsAttempt: true }));
        Assert.Contains("is not an import-errors document", ((BulkVerdict.RetryLater)verdicts[0]).Cause);
    }

    [TestMethod]
    [DataRow(StatusPath, DisplayName = "status")]
    [DataRow(ErrorsPath, DisplayName = "import errors")]
    public async Task Check_2xxBodyOver1MiB_EveryMessageRetriesLaterNeverDelivered(string hugePath)
    {
        var padding = new string('x', KlaviyoAnswerHandler.MaxGetBodyBytes);
        using var klaviyo = FakeKlaviyo.Start()
            .AnswerGet(StatusPath, 200, hugePath == StatusPath ? Status("complete", failed: null).Replace("\"links\"", $"\"pad\":\"{padding}\",\"links\"", StringComparison.Ordinal) : Status("complete", failed: null))
            .AnswerGet(ErrorsPath, 200, hugePath == ErrorsPath ? ErrorsPage(null, PhoneError.Replace("\"code\"", $"\"pad\":\"{padding}\",\"code\"", StringComparison.Ordinal)) : ErrorsPage(null));
        var (client, host) = Start(klaviyo);
        using var _ = host;

        var check = await client.CheckAsync(Ticket500, TestContext.CancellationToken);

        var verdicts = Settled(check, "unreadable");
        Assert.IsTrue(verdicts.All(v => v is BulkVerdict.RetryLater));
        Assert.Contains("over 1 MiB", ((BulkVerdict.RetryLater)verdicts[0]).Cause);
        Assert.HasCount(hugePath == StatusPath ? 1 : 2, klaviyo.Received);
    }

    [TestMethod]
    [DataRow("cancelled")]
    [DataRow("failed")]
    public async Task Check_JobCancelledOrFailed_EveryMessageRetriesLaterSpendingAnAttempt(string status)
    {
        using var klaviyo = FakeKlaviyo.Start().AnswerGet(StatusPath, 200, Status(status));
        var (client, host) = Start(klaviyo);
        using var _ = host;
        using var wait = new MetricCollector<double>(host.Services.GetRequiredService<IMeterFactory>(), RelayMetrics.MeterName, "klaviyo.relay.import_job.wait");

        var verdicts = Settled(await client.CheckAsync(Ticket500, TestContext.CancellationToken), status);

        Assert.IsTrue(verdicts.All(v => v is BulkVerdict.RetryLater { SpendsAttempt: true }));
        Assert.Contains($"ended '{status}'", ((BulkVerdict.RetryLater)verdicts[0]).Cause);
        Assert.AreEqual(status, wait.GetMeasurementSnapshot().Single().Tags["state"]);
        Assert.HasCount(1, klaviyo.Received);
    }

    [TestMethod]
    [DataRow(StatusPath, DisplayName = "status")]
    [DataRow(ErrorsPath, DisplayName = "import errors")]
    public async Task Check_Get429WithRetryAfter_NotNowCarryingItNothingSettled(string throttledPath)
    {
        var throttled = new Dictionary<string, string> { ["Retry-After"] = "120" };
        using var klaviyo = FakeKlaviyo.Start()
            .AnswerGet(StatusPath, throttledPath == StatusPath ? 429 : 200, throttledPath == StatusPath ? FakeKlaviyo.ErrorAnswer(429, "throttled", "Request was throttled.", null) : Status("complete", failed: null), throttledPath == StatusPath ? throttled : null)
            .AnswerGet(ErrorsPath, 429, FakeKlaviyo.ErrorAnswer(429, "throttled", "Request was throttled.", null), throttled);
        var (client, host) = Start(klaviyo);
        using var _ = host;
        using var wait = new MetricCollector<double>(host.Services.GetRequiredService<IMeterFactory>(), RelayMetrics.MeterName, "klaviyo.relay.import_job.wait");

        var check = await client.CheckAsync(Ticket500, TestContext.CancellationToken);

        var notNow = Assert.IsInstanceOfType<ImportJobCheck.NotNow>(check);
        Assert.AreEqual(TimeSpan.FromSeconds(120), notNow.RetryAfter);
        Assert.StartsWith($"import job 01JOB of POST /api/profile-bulk-import-jobs: GET {throttledPath} answered 429", notNow.Description);
        Assert.IsEmpty(wait.GetMeasurementSnapshot(), "the job is not settled");
    }

    [TestMethod]
    public async Task Check_Get503Persistently_NotNow()
    {
        using var klaviyo = FakeKlaviyo.Start().AnswerGet(StatusPath, 503);
        var (client, host) = Start(klaviyo);
        using var _ = host;

        var check = await client.CheckAsync(Ticket500, TestContext.CancellationToken);

        Assert.Contains("answered 503", Assert.IsInstanceOfType<ImportJobCheck.NotNow>(check).Description);
        Assert.HasCount(3, klaviyo.Received, "the usual in-call retries");
    }

    [TestMethod]
    [DataRow("GetImportJob", 0, DisplayName = "status held back")]
    [DataRow("GetImportErrors", 1, DisplayName = "import errors held back")]
    public async Task Check_GetHeldBackByTheRelaysLimiter_NotNowWithoutThatCall(string heldEndpoint, int callsMade)
    {
        var endpoint = Enum.Parse<KlaviyoEndpoint>(heldEndpoint);
        using var klaviyo = FakeKlaviyo.Start().AnswerGet(StatusPath, 200, Status("complete", failed: null)).AnswerGet(ErrorsPath, 200, ErrorsPage(null));
        var (client, host) = Start(klaviyo);
        using var _ = host;
        using var heldBack = new MetricCollector<long>(host.Services.GetRequiredService<IMeterFactory>(), RelayMetrics.MeterName, "klaviyo.relay.klaviyo.held_back");
        host.Services.GetRequiredService<KlaviyoRateLimits>().Pause(endpoint, TimeSpan.FromSeconds(30));

        var check = await client.CheckAsync(Ticket500, TestContext.CancellationToken);

        var notNow = Assert.IsInstanceOfType<ImportJobCheck.NotNow>(check);
        Assert.IsGreaterThan(TimeSpan.FromSeconds(25), notNow.RetryAfter!.Value);
        Assert.Contains("held back by the relay's rate limiter", notNow.Description);
        Assert.Contains("GET /api/profile-bulk-import-jobs/01JOB", notNow.Description);
        Assert.HasCount(callsMade, klaviyo.Received);
        Assert.AreEqual(endpoint.ToString(), heldBack.GetMeasurementSnapshot().Single().Tags["endpoint"]);
    }

    [TestMethod]
    public async Task Tracker_StatusReadHeldBackAfterSeveralPolls_AsksAgainWhenTheBudgetHasRoomNotAfterTheGrownInterval()
    {
        // Four polls in, the next interval would be 30 s; the job-read budget has room again in 3 s.
        using var klaviyo = FakeKlaviyo.Start().AnswerGet(StatusPath, 200, Status("complete"));
        var (client, host) = Start(klaviyo);
        using var _ = host;
        host.Services.GetRequiredService<KlaviyoRateLimits>().Pause(KlaviyoEndpoint.GetImportJob, TimeSpan.FromSeconds(3));
        var tracker = new ImportJobTracker(client, host.Time!);
        var ticket = Ticket500 with { Polls = 4, CreatedAt = host.Time!.GetUtcNow() - TimeSpan.FromMinutes(1) };

        var step = await tracker.CheckAsync(ticket.Serialize(), TestContext.CancellationToken);

        var again = Assert.IsInstanceOfType<TrackerStep.PollAgain>(step);
        Assert.IsLessThanOrEqualTo(host.Time!.GetUtcNow() + TimeSpan.FromSeconds(3), again.Due);
        Assert.IsEmpty(klaviyo.Received);
    }

    [TestMethod]
    [DataRow(StatusPath, 401)]
    [DataRow(StatusPath, 403)]
    [DataRow(ErrorsPath, 401)]
    public async Task Check_Unauthorized_EveryMessageDeadLetteredKlaviyoUnauthorized(string refusedPath, int status)
    {
        var refusal = FakeKlaviyo.ErrorAnswer(status, "not_authenticated", "Missing or invalid private key.", null);
        using var klaviyo = FakeKlaviyo.Start()
            .AnswerGet(StatusPath, refusedPath == StatusPath ? status : 200, refusedPath == StatusPath ? refusal : Status("complete", failed: null))
            .AnswerGet(ErrorsPath, status, refusal);
        var (client, host) = Start(klaviyo);
        using var _ = host;

        var verdicts = Settled(await client.CheckAsync(Ticket500, TestContext.CancellationToken), "unauthorized");

        Assert.IsTrue(verdicts.All(v => v is BulkVerdict.DeadLetter { Reason: BulkRefusal.KlaviyoUnauthorized }));
        var description = ((BulkVerdict.DeadLetter)verdicts[0]).Description;
        Assert.Contains($"GET {refusedPath} answered {status}: not_authenticated: Missing or invalid private key.", description);
        // The scopes of the refused call, as Klaviyo's OpenAPI document names them (x-klaviyo-scopes).
        Assert.EndsWith($"check Klaviyo__PrivateApiKey and its scopes (this call needs {(refusedPath == StatusPath ? "lists:read, profiles:read" : "profiles:read")})", description);
        Assert.DoesNotContain(RelayTestHost.ApiKey, description);
    }

    [TestMethod]
    [DataRow(404)]
    [DataRow(400)]
    public async Task Check_StatusGetRejected_JobUnknownEveryMessageRetriesLater(int status)
    {
        using var klaviyo = FakeKlaviyo.Start().AnswerGet(StatusPath, status, FakeKlaviyo.ErrorAnswer(status, "not_found", "No job.", null));
        var (client, host) = Start(klaviyo);
        using var _ = host;

        var verdicts = Settled(await client.CheckAsync(Ticket500, TestContext.CancellationToken), "unknown");

        Assert.IsTrue(verdicts.All(v => v is BulkVerdict.RetryLater { SpendsAttempt: true }));
        Assert.Contains($"GET {StatusPath} answered {status}: not_found: No job.", ((BulkVerdict.RetryLater)verdicts[0]).Cause);
    }

    [TestMethod]
    public async Task Check_ImportErrorEchoingTheKey_KeyCutFromTheDeadLetterAndTheLogs()
    {
        var echo = PhoneError.Replace("phone_number is not valid", $"key {RelayTestHost.ApiKey} is odd", StringComparison.Ordinal);
        using var klaviyo = FakeKlaviyo.Start().AnswerGet(StatusPath, 200, Status("complete", failed: 1)).AnswerGet(ErrorsPath, 200, ErrorsPage(null, echo));
        var (client, host) = Start(klaviyo);
        using var _ = host;

        var verdicts = Settled(await client.CheckAsync(Ticket500, TestContext.CancellationToken), "complete");

        Assert.Contains("key *** is odd", ((BulkVerdict.DeadLetter)verdicts[17]).Description);
        Assert.DoesNotContain(RelayTestHost.ApiKey, host.AllLogText());
        Assert.Contains("Import job 01JOB settled as 'complete'", host.AllLogText());
    }

    [TestMethod]
    public async Task Check_JobIdNeedingEscapes_AskedEscapedInThePath()
    {
        // The fake shows the path decoded: a '?' in it (not a query) shows it was sent escaped.
        using var klaviyo = FakeKlaviyo.Start().AnswerGet("/api/profile-bulk-import-jobs/a b?", 200, Status("queued"));
        var (client, host) = Start(klaviyo);
        using var _ = host;

        var check = await client.CheckAsync(JobTicketTests.Ticket(2, "a b?"), TestContext.CancellationToken);

        Assert.AreEqual(new ImportJobCheck.Running("queued"), check);
    }

    [TestMethod]
    public async Task Check_FailedCountAboveTheErrorsTiedToProfiles_TheOthersRetryLaterNotDelivered()
    {
        using var klaviyo = FakeKlaviyo.Start()
            .AnswerGet(StatusPath, 200, Status("complete", failed: 3))
            .AnswerGet(ErrorsPath, 200, ErrorsPage(null, PhoneError, EmailError));
        var (client, host) = Start(klaviyo);
        using var _ = host;

        var verdicts = Settled(await client.CheckAsync(Ticket500, TestContext.CancellationToken), "complete");

        Assert.IsInstanceOfType<BulkVerdict.DeadLetter>(verdicts[17]);
        Assert.IsInstanceOfType<BulkVerdict.DeadLetter>(verdicts[321]);
        Assert.AreEqual(498, verdicts.Count(v => v is BulkVerdict.RetryLater), "Klaviyo counted a third failure no error names: none of the others is confirmed");
        Assert.AreEqual(0, verdicts.Count(v => v is BulkVerdict.Delivered));
    }

    [TestMethod]
    public async Task Check_StatusBodyStalls_EveryMessageRetriesLaterNeverDelivered()
    {
        using var klaviyo = FaultyKlaviyo.Start().Then(StatusPath, new Fault.StallBody(200, "{\"data\":{\"attributes\":{\"status\":\"comp", 500));
        using var host = RelayTestHost.Create(klaviyo.BaseUrl, new Dictionary<string, string?> { ["Relay:AttemptTimeout"] = "00:00:01" }, time: TimeProvider.System);
        var client = ActivatorUtilities.CreateInstance<ImportJobClient>(host.Services);

        var verdicts = Settled(await client.CheckAsync(Ticket500, TestContext.CancellationToken), "unreadable");

        Assert.IsTrue(verdicts.All(v => v is BulkVerdict.RetryLater));
        Assert.Contains($"GET {StatusPath} answered 200, then the answer's body stalled", ((BulkVerdict.RetryLater)verdicts[0]).Cause);
        Assert.AreEqual(1, klaviyo.Count(StatusPath));
    }
}
