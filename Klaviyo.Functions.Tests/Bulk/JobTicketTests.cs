using System.Text;
using System.Text.Json;
using Klaviyo.Functions.Bulk;
using Klaviyo.Functions.Klaviyo;
using Klaviyo.Functions.Tests.TestSupport;
using Klaviyo.Functions.Transform;

namespace Klaviyo.Functions.Tests.Bulk;

[TestClass]
public sealed class JobTicketTests
{
    public TestContext TestContext { get; set; } = null!;

    private static readonly DateTimeOffset Created = new(2026, 12, 1, 1, 2, 3, 456, TimeSpan.Zero);

    /// <summary>The profiles of <paramref name="count"/> identifies (emails p{i}@example.com) as the transform writes them.</summary>
    internal static IReadOnlyList<ProfilePart> Profiles(int count) => Enumerable.Range(0, count)
        .Select(i => ((ProfileParts)((TransformResult.Planned)Transforms.Run($$$"""{"type":"identify","userId":"u-{{{i}}}","traits":{"email":"p{{{i}}}@example.com"}}""")).Parts).Profile)
        .ToList();

    /// <summary>An import job request of <paramref name="count"/> profiles (emails p{i}@example.com).</summary>
    internal static KlaviyoRequest ImportJobRequest(int count) => ProfileImportJobBuilder.Build(null, Profiles(count)).Single().Request;

    /// <summary>A ticket for a job of <paramref name="count"/> profiles, item k carrying sequences <paramref name="first"/> + 2k and + 2k + 1.</summary>
    internal static JobTicket Ticket(int count, string jobId = "01JOB", long first = 1000) =>
        JobTicket.ForJob(KlaviyoApi.BulkImportProfilesPath, jobId, Profiles(count).Select(p => p.IdentityText).ToList(),
            Enumerable.Range(0, count).Select(k => (IReadOnlyList<long>)[first + (2 * k), first + (2 * k) + 1]).ToArray(), Created);

    [TestMethod]
    public void Ticket_SerializedThenParsed_RoundTripsEveryField()
    {
        var ticket = Ticket(3, "01J/odd id") with { Polls = 4 };

        var parsed = JobTicket.TryParse(ticket.Serialize(), out var back, out var error);

        Assert.IsTrue(parsed, error);
        Assert.AreEqual("01J/odd id", back!.JobId);
        Assert.AreEqual(KlaviyoApi.BulkImportProfilesPath, back.Path);
        Assert.AreEqual(Created, back.CreatedAt);
        Assert.AreEqual(TimeSpan.Zero, back.CreatedAt.Offset);
        Assert.AreEqual(4, back.Polls);
        Assert.AreSequenceEqual(ticket.Items.Select(i => i.Identity).ToArray(), back.Items.Select(i => i.Identity).ToArray());
        Assert.AreSequenceEqual(new long[] { 1000, 1001, 1002, 1003, 1004, 1005 }, back.Items.SelectMany(i => i.Sequences).ToArray());
        Assert.AreEqual(5, back.Polled().Polls);
    }

    [TestMethod]
    public void ForJob_Profiles_ItemsInBodyOrderIdentifiedByHashesWithoutTheirEmails()
    {
        // The ticket hashes the identities the transform carried; the job body read back (as Klaviyo's import errors
        // echo it) must give the same hashes, or errors could not be matched to their profiles.
        var profiles = Profiles(3);
        var request = ProfileImportJobBuilder.Build(null, profiles).Single().Request;
        var ticket = JobTicket.ForJob(request.Path, "J", profiles.Select(p => p.IdentityText).ToList(), [[7], [8, 9], [10]], Created);

        using var body = JsonDocument.Parse(request.Body);
        var written = body.RootElement.GetProperty("data").GetProperty("attributes").GetProperty("profiles").GetProperty("data").EnumerateArray().ToList();
        Assert.AreSequenceEqual(written.Select(p => JobTicket.IdentityHash(BulkJson.IdentityKey(p))).ToArray(), ticket.Items.Select(i => i.Identity).ToArray());
        Assert.IsTrue(ticket.Items.All(i => i.Identity.Length == 12));
        Assert.HasCount(3, ticket.Items.Select(i => i.Identity).Distinct());
        Assert.AreSequenceEqual(new long[] { 8, 9 }, ticket.Items[1].Sequences.ToArray());
        var text = Encoding.UTF8.GetString(ticket.Serialize());
        Assert.DoesNotContain("example.com", text);
        Assert.DoesNotContain(" ", text, "compact JSON");
    }

    [TestMethod]
    public void IdentityText_OfEveryProfileOfTheMixAndOddIdentities_IsWhatTheProfileObjectReadsAs()
    {
        var events = BulkBuildersTests.MixLines().Concat(
        [
            """{"type":"identify","userId":"u-1","traits":{"email":"a@example.com","phone":"+1 (415) 555-2671","_kx":"kx\\"q\u00e9"}}""",
            """{"type":"identify","anonymousId":"anon-1","context":{"externalId":[{"type":"klaviyo-profileId","id":"01KPROFILE"}]}}""",
            """{"type":"group","userId":42,"groupId":"G1","traits":{"email":"b@example.com"}}""",
        ]);
        var profiles = events.Select(e => Transforms.Run(e)).OfType<TransformResult.Planned>().Select(p => p.Parts).OfType<ProfileParts>().Select(p => p.Profile).ToList();
        Assert.IsGreaterThan(10, profiles.Count);

        foreach (var profile in profiles)
        {
            using var data = JsonDocument.Parse(profile.Data);
            Assert.AreEqual(BulkJson.IdentityKey(data.RootElement), profile.IdentityText, Encoding.UTF8.GetString(profile.Data.Span));
        }
    }

    [TestMethod]
    public void ForJob_SequenceListsNotOnePerProfile_Throws()
    {
        Assert.ThrowsExactly<ArgumentException>(() => JobTicket.ForJob(KlaviyoApi.BulkImportProfilesPath, "J", Profiles(3).Select(p => p.IdentityText).ToList(), [[1], [2]], Created));
    }

    [TestMethod]
    public void Serialize_1000ItemsWithTwoLargestSequencesEach_WellUnderServiceBus256KB()
    {
        // Sequence numbers of a partitioned entity carry the partition in their high bits: 19 digits, the longest there are.
        var ticket = Ticket(1000, "01HZZZZZZZZZZZZZZZZZZZZZZZ", first: long.MaxValue - 5000);

        var bytes = ticket.Serialize();

        TestContext.WriteLine($"1,000-item ticket: {bytes.Length} bytes");
        Assert.IsLessThan(128 * 1024, bytes.Length, "half of the 256 KB message limit, leaving room for headers and properties");
        Assert.IsTrue(JobTicket.TryParse(bytes, out var back, out var error), error);
        Assert.HasCount(1000, back!.Items);
    }

    [TestMethod]
    [DataRow("", "ticket: not JSON", DisplayName = "empty")]
    [DataRow("[]", "ticket: must be a JSON object", DisplayName = "an array")]
    [DataRow("""{"path":"/api/x","createdAt":"2026-12-01T00:00:00.0000000+00:00","polls":0,"items":[]}""", "jobId:", DisplayName = "no jobId")]
    [DataRow("""{"jobId":7,"path":"/api/x","createdAt":"2026-12-01T00:00:00.0000000+00:00","polls":0,"items":[]}""", "jobId:", DisplayName = "jobId a number")]
    [DataRow("""{"jobId":"J","path":"api/x","createdAt":"2026-12-01T00:00:00.0000000+00:00","polls":0,"items":[]}""", "path: must start with '/'", DisplayName = "relative path")]
    [DataRow("""{"jobId":"J","path":"/api/x","createdAt":"yesterday","polls":0,"items":[]}""", "createdAt:", DisplayName = "createdAt not a date")]
    [DataRow("""{"jobId":"J","path":"/api/x","createdAt":"2026-12-01T00:00:00.0000000+00:00","polls":-1,"items":[]}""", "polls:", DisplayName = "negative polls")]
    [DataRow("""{"jobId":"J","path":"/api/x","createdAt":"2026-12-01T00:00:00.0000000+00:00","polls":1.5,"items":[]}""", "polls:", DisplayName = "fractional polls")]
    [DataRow("""{"jobId":"J","path":"/api/x","createdAt":"2026-12-01T00:00:00.0000000+00:00","polls":0}""", "items: must be an array", DisplayName = "no items")]
    [DataRow("""{"jobId":"J","path":"/api/x","createdAt":"2026-12-01T00:00:00.0000000+00:00","polls":0,"items":[]}""", "items: must hold 1 to 10000 items, not 0", DisplayName = "no item")]
    [DataRow("""{"jobId":"J","path":"/api/x","createdAt":"2026-12-01T00:00:00.0000000+00:00","polls":0,"items":[{"identity":"abc","sequences":[1]}]}""", "items[0].identity: must be 12 base64url characters", DisplayName = "short identity")]
    [DataRow("""{"jobId":"J","path":"/api/x","createdAt":"2026-12-01T00:00:00.0000000+00:00","polls":0,"items":[{"identity":"AAAAAAAAAAA=","sequences":[1]}]}""", "items[0].identity:", DisplayName = "identity not base64url")]
    [DataRow("""{"jobId":"J","path":"/api/x","createdAt":"2026-12-01T00:00:00.0000000+00:00","polls":0,"items":[{"identity":"AAAAAAAAAAAA","sequences":[]}]}""", "items: no item carries a sequence number", DisplayName = "no sequence in any item")]
    [DataRow("""{"jobId":"J","path":"/api/x","createdAt":"2026-12-01T00:00:00.0000000+00:00","polls":0,"items":[{"identity":"AAAAAAAAAAAA","sequences":["1"]}]}""", "items[0].sequences[0]:", DisplayName = "sequence a string")]
    [DataRow("""{"jobId":"J","path":"/api/x","createdAt":"2026-12-01T00:00:00.0000000+00:00","polls":0,"items":[{"identity":"AAAAAAAAAAAA","sequences":[-4]}]}""", "items[0].sequences[0]:", DisplayName = "negative sequence")]
    [DataRow("""{"jobId":"J","path":"/api/x","createdAt":"2026-12-01T00:00:00.0000000+00:00","polls":0,"items":[{"identity":"AAAAAAAAAAAA","sequences":[1]},{"identity":"BBBBBBBBBBBB","sequences":[2,1]}]}""", "items[1].sequences[1]: 1 appears more than once", DisplayName = "a sequence twice")]
    [DataRow("""{"jobId":"J","path":"/api/x","createdAt":"2026-12-01T00:00:00.0000000+00:00","polls":0,"items":[7]}""", "items[0]: must be an object", DisplayName = "item not an object")]
    public void TryParse_Malformed_RefusedNamingTheField(string json, string expected)
    {
        var parsed = JobTicket.TryParse(Encoding.UTF8.GetBytes(json), out var ticket, out var error);

        Assert.IsFalse(parsed);
        Assert.IsNull(ticket);
        Assert.StartsWith(expected, error);
    }

    [TestMethod]
    public void TryParse_MoreThan10000Items_Refused()
    {
        var items = string.Join(",", Enumerable.Range(0, 10_001).Select(i => $$"""{"identity":"AAAAAAAAAAAA","sequences":[{{i}}]}"""));
        var json = $$"""{"jobId":"J","path":"/api/x","createdAt":"2026-12-01T00:00:00.0000000+00:00","polls":0,"items":[{{items}}]}""";

        Assert.IsFalse(JobTicket.TryParse(Encoding.UTF8.GetBytes(json), out _, out var error));
        Assert.AreEqual("items: must hold 1 to 10000 items, not 10001", error);
    }

    [TestMethod]
    public void TryParse_DeeplyNested_RefusedAsNotJsonWithoutThrowing()
    {
        var json = new string('[', 10_000) + new string(']', 10_000);

        Assert.IsFalse(JobTicket.TryParse(Encoding.UTF8.GetBytes(json), out _, out var error));
        Assert.StartsWith("ticket: not JSON", error);
    }
}
