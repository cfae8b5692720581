using System.Text;
using Klaviyo.Functions.Bulk;
using Klaviyo.Functions.Klaviyo;
using Klaviyo.Functions.Relay;
using Klaviyo.Functions.Tests.TestSupport;
using Klaviyo.Functions.Transform;

namespace Klaviyo.Functions.Tests.Bulk;

[TestClass]
public sealed class BulkAnswerTests
{
    private static EventsBulkCall TenEntryCall() =>
        BatchPlannerTests.Planner().Plan(Enumerable.Range(0, 10).Select(i => BatchPlannerTests.Track($"m-{i}", $"u-{i}")).ToList()).EventCalls.Single();

    private static KlaviyoError Invalid(string? pointer, string detail = "Invalid input.") => new("invalid", "Invalid input.", detail, pointer, null);

    [TestMethod]
    public void EventsBulk_400PointingAtEntries3And7_OnlyThoseDeadLetteredTheRestResent()
    {
        var call = TenEntryCall();
        var response = new KlaviyoResponse.Rejected(400, [
            Invalid("/data/attributes/events-bulk-create/data/3/attributes/profile/data/attributes/email", "bad email"),
            Invalid("/data/attributes/events-bulk-create/data/7/attributes/events/data/0/attributes/time", "bad time")]);

        var verdicts = EventsBulkAnswer.Interpret(call, response);

        Assert.HasCount(10, verdicts);
        var three = (BulkVerdict.DeadLetter)verdicts[call.Entries[3][0][0]];
        Assert.AreEqual(BulkRefusal.KlaviyoRejected, three.Reason);
        Assert.Contains("bad email", three.Description);
        Assert.Contains("/data/attributes/events-bulk-create/data/3", three.Description);
        Assert.Contains("bad time", ((BulkVerdict.DeadLetter)verdicts[call.Entries[7][0][0]]).Description);
        Assert.AreEqual(8, verdicts.Values.Count(v => v is BulkVerdict.Resend));
    }

    [TestMethod]
    public void EventsBulk_400PointingAtOneEventOfAnEntry_OnlyThatEventsMessage()
    {
        var call = BatchPlannerTests.Planner().Plan(Enumerable.Range(0, 10).Select(i => BatchPlannerTests.Track($"m-{i}", "u-1")).ToList()).EventCalls.Single();

        var verdicts = EventsBulkAnswer.Interpret(call, new KlaviyoResponse.Rejected(400, [Invalid("/data/attributes/events-bulk-create/data/0/attributes/events/data/4/attributes/metric")]));

        Assert.IsInstanceOfType<BulkVerdict.DeadLetter>(verdicts[call.Entries[0][4][0]]);
        Assert.AreEqual(9, verdicts.Values.Count(v => v is BulkVerdict.Resend));
    }

    [TestMethod]
    [DataRow(null, DisplayName = "no pointer")]
    [DataRow("/data/attributes", DisplayName = "pointer at the job")]
    [DataRow("/data/attributes/events-bulk-create/data/99", DisplayName = "pointer past the entries")]
    public void EventsBulk_400NamingNoEntry_EveryMessageSentOnItsOwn(string? pointer)
    {
        var call = TenEntryCall();

        var verdicts = EventsBulkAnswer.Interpret(call, new KlaviyoResponse.Rejected(400, [Invalid(pointer)]));

        Assert.IsTrue(verdicts.Values.All(v => v is BulkVerdict.SendSingly), string.Join(", ", verdicts.Values));
        Assert.HasCount(10, verdicts);
    }

    [TestMethod]
    public void EventsBulk_429_EveryMessageRetriesWithRetryAfterAndSpendsAnAttempt()
    {
        var verdicts = EventsBulkAnswer.Interpret(TenEntryCall(), new KlaviyoResponse.Transient(429, TimeSpan.FromSeconds(42), "POST answered 429"));

        Assert.IsTrue(verdicts.Values.All(v => v is BulkVerdict.RetryLater { RetryAfter.TotalSeconds: 42, SpendsAttempt: true }));
    }

    [TestMethod]
    public void EventsBulk_HeldBackByTheRelaysLimiter_RetriesWithoutSpendingAnAttempt()
    {
        var verdicts = EventsBulkAnswer.Interpret(TenEntryCall(), new KlaviyoResponse.HeldBack(TimeSpan.FromSeconds(7), "held back"));

        Assert.IsTrue(verdicts.Values.All(v => v is BulkVerdict.RetryLater { SpendsAttempt: false, RetryAfter.TotalSeconds: 7 }));
    }

    [TestMethod]
    [DataRow(401)]
    [DataRow(403)]
    public void EventsBulk_401Or403_EveryMessageUnauthorized(int status)
    {
        var verdicts = EventsBulkAnswer.Interpret(TenEntryCall(), new KlaviyoResponse.Unauthorized(status, [new("not_authenticated", null, "Missing or invalid private key.", null, null)]));

        Assert.IsTrue(verdicts.Values.All(v => v is BulkVerdict.DeadLetter { Reason: BulkRefusal.KlaviyoUnauthorized }));
        Assert.Contains("Missing or invalid private key.", ((BulkVerdict.DeadLetter)verdicts[0]).Description);
    }

    [TestMethod]
    public void EventsBulk_202_EveryMessageDelivered()
    {
        var verdicts = EventsBulkAnswer.Interpret(TenEntryCall(), new KlaviyoResponse.Success(202, null));

        Assert.IsTrue(verdicts.Values.All(v => v is BulkVerdict.Delivered));
    }

    private static JobTicket FiveHundredProfileJob()
    {
        var profiles = Enumerable.Range(0, 500)
            .Select(i => ((ProfileParts)((TransformResult.Planned)Transforms.Run($$$"""{"type":"identify","userId":"u-{{{i}}}","traits":{"email":"p{{{i}}}@example.com"}}""")).Parts).Profile)
            .ToList();
        var call = ProfileImportJobBuilder.Build(null, profiles).Single();
        // Message (sequence) 1000 + k carried by profile k.
        return JobTicket.ForJob(call.Request.Path, "J1", call.Items.Select(k => profiles[k].IdentityText).ToList(), call.Items.Select(k => (IReadOnlyList<long>)[1000L + k]).ToArray(), DateTimeOffset.UnixEpoch);
    }

    private static byte[] Utf8(string json) => Encoding.UTF8.GetBytes(json);

    [TestMethod]
    public void ImportJob_CompleteWith2FailedOf500_ExactlyThose2DeadLetteredWithKlaviyosDetail()
    {
        var job = FiveHundredProfileJob();
        var state = ImportJobAnswer.ParseStatus(Utf8("""{"data":{"type":"profile-bulk-import-job","id":"J1","attributes":{"status":"complete","total_count":500,"completed_count":498,"failed_count":2}}}"""));
        var page = ImportJobAnswer.ParseErrors(Utf8("""
            {"data":[
              {"type":"import-error","id":"e1","attributes":{"code":"invalid","title":"Invalid input","detail":"phone_number is not valid","source":{"pointer":"/data/attributes/profiles/data/17/attributes/phone_number"}}},
              {"type":"import-error","id":"e2","attributes":{"code":"invalid","title":"Invalid input","detail":"email is not valid","source":{},"original_payload":{"email":"p321@example.com","external_id":"u-321"}}}
            ],"links":{"self":"x","next":null}}
            """))!;

        var verdicts = ImportJobAnswer.Settle(job, state, page.Errors);

        Assert.HasCount(500, verdicts);
        Assert.AreEqual(498, verdicts.Count(v => v is BulkVerdict.Delivered));
        Assert.Contains("phone_number is not valid", ((BulkVerdict.DeadLetter)verdicts[17]).Description);
        Assert.Contains("email is not valid", ((BulkVerdict.DeadLetter)verdicts[321]).Description);
        Assert.IsNull(page.Next);
    }

    [TestMethod]
    [DataRow("cancelled")]
    [DataRow("failed")]
    public void ImportJob_CancelledOrFailed_EveryMessageRetries(string status)
    {
        var state = ImportJobAnswer.ParseStatus(Utf8("""{"data":{"type":"profile-bulk-import-job","id":"J1","attributes":{"status":""" + "\"" + status + "\"}}}"));

        var verdicts = ImportJobAnswer.Settle(FiveHundredProfileJob(), state, []);

        Assert.IsTrue(verdicts.All(v => v is BulkVerdict.RetryLater { SpendsAttempt: true }));
        Assert.HasCount(500, verdicts);
    }

    [TestMethod]
    [DataRow("queued")]
    [DataRow("processing")]
    public void ImportJob_Running_NothingSettled(string status)
    {
        var state = ImportJobAnswer.ParseStatus(Utf8("""{"data":{"attributes":{"status":""" + "\"" + status + "\"}}}"));

        Assert.IsTrue(ImportJobAnswer.Settle(FiveHundredProfileJob(), state, null).All(v => v is BulkVerdict.Pending));
    }

    [TestMethod]
    [DataRow("not json", DisplayName = "not JSON")]
    [DataRow("""{"data":{"attributes":{}}}""", DisplayName = "no status")]
    [DataRow("""{"data":{"attributes":{"status":7}}}""", DisplayName = "status not a string")]
    [DataRow("""{"data":{"attributes":{"status":"COMPLETE!"}}}""", DisplayName = "unknown status")]
    [DataRow("""[]""", DisplayName = "an array")]
    public void ImportJob_MalformedStatus_RetriesNeverCompletes(string body)
    {
        var state = ImportJobAnswer.ParseStatus(Utf8(body));

        Assert.IsInstanceOfType<ImportJobState.Unreadable>(state);
        Assert.IsTrue(ImportJobAnswer.Settle(FiveHundredProfileJob(), state, []).All(v => v is BulkVerdict.RetryLater));
    }

    [TestMethod]
    [DataRow("not json")]
    [DataRow("""{"errors":[]}""")]
    [DataRow("""{"data":[{"type":"import-error"}]}""")]
    [DataRow("""{"data":{}}""")]
    public void ImportErrors_Malformed_UnreadableSoTheJobRetries(string body)
    {
        var page = ImportJobAnswer.ParseErrors(Utf8(body));
        var complete = new ImportJobState.Complete(0);

        Assert.IsNull(page);
        Assert.IsTrue(ImportJobAnswer.Settle(FiveHundredProfileJob(), complete, page?.Errors).All(v => v is BulkVerdict.RetryLater));
    }

    [TestMethod]
    public void ImportJob_FailedCountAboveTheErrorsTiedToProfiles_OthersRetryNotDelivered()
    {
        var verdicts = ImportJobAnswer.Settle(FiveHundredProfileJob(), new ImportJobState.Complete(3),
            [new ImportError(4, null, "invalid: bad"), new ImportError(null, "nobody", "invalid: who?")]);

        Assert.IsInstanceOfType<BulkVerdict.DeadLetter>(verdicts[4]);
        Assert.AreEqual(499, verdicts.Count(v => v is BulkVerdict.RetryLater));
    }

    [TestMethod]
    public void ImportJob_PayloadIdentityOfTwoItems_NeitherDeadLetteredTheOthersRetry()
    {
        var job = FiveHundredProfileJob();
        var twin = job with { Items = [job.Items[0], job.Items[0] with { Sequences = [9] }, .. job.Items.Skip(2)] };

        ImportError[] errors = [new ImportError(null, "\u001fp0@example.com\u001f\u001fu-0\u001f\u001f", "invalid: which one?")];

        var alone = ImportJobAnswer.Settle(job, new ImportJobState.Complete(1), errors);
        var verdicts = ImportJobAnswer.Settle(twin, new ImportJobState.Complete(1), errors);

        Assert.IsInstanceOfType<BulkVerdict.DeadLetter>(alone[0], "the payload is profile 0's");
        Assert.IsTrue(verdicts.All(v => v is BulkVerdict.RetryLater), "an error that fits two profiles is tied to neither");
    }
}
