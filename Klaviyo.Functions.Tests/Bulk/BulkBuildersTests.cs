using System.Text;
using System.Text.Json.Nodes;
using Klaviyo.Functions.Bulk;
using Klaviyo.Functions.Klaviyo;
using Klaviyo.Functions.Tests.TestSupport;
using Klaviyo.Functions.Transform;

namespace Klaviyo.Functions.Tests.Bulk;

[TestClass]
public sealed class BulkBuildersTests
{
    private static RequestPlan Plan(string json) =>
        Transforms.Run(json) is TransformResult.Planned planned ? planned.Plan : throw new AssertFailedException($"not planned: {json}");

    private static KlaviyoRequest First(string json) => Plan(json).Steps[0].Build();

    private static DeliveryParts Parts(string json) =>
        Transforms.Run(json) is TransformResult.Planned planned ? planned.Parts : throw new AssertFailedException($"not planned: {json}");

    private static EventPart EventOf(string json) => ((EventParts)Parts(json)).Events.Single();

    private static ProfilePart ProfileOf(string json) => ((ProfileParts)Parts(json)).Profile;

    private static ListPart ListOf(string json) => ((ProfileParts)Parts(json)).List!;

    private static string Track(string messageId, string userId, string name = "Clicked", string extra = "") =>
        $$"""{"type":"track","messageId":"{{messageId}}","userId":"{{userId}}","event":"{{name}}","timestamp":"2026-11-20T10:00:00Z","properties":{"n":"{{messageId}}" """ + extra + "}}";

    private static string Seq<T>(IEnumerable<T> items) => string.Join(",", items);

    private static JsonNode Json(ReadOnlyMemory<byte> body) => JsonNode.Parse(body.Span)!;

    private static void AssertValid(KlaviyoRequest request) => KlaviyoSchemas.AssertValid(request);

    internal static IReadOnlyList<string> MixLines() =>
        File.ReadAllLines(Path.Combine(KlaviyoSchemas.SharedDirectory, "bench", "event-mix.jsonl")).Where(l => l.Length > 0).ToList();

    [TestMethod]
    public void EventsBulk_StandardMixEvents_BodiesMatchEventsBulkCreateJobSchema()
    {
        var pieces = MixLines().Select(l => Transforms.Run(l)).OfType<TransformResult.Planned>()
            .Select(p => p.Parts).OfType<EventParts>().Select(p => p.Events.Single()).ToList();
        Assert.IsGreaterThan(50, pieces.Count);

        var calls = EventsBulkBuilder.Build(pieces);

        foreach (var call in calls)
        {
            AssertValid(call.Request);
            Assert.AreEqual(KlaviyoApi.BulkCreateEventsPath, call.Request.Path);
        }
        Assert.AreEqual(string.Join(",", Enumerable.Range(0, pieces.Count)), string.Join(",", calls.SelectMany(c => c.Pieces).Order()));
    }

    [TestMethod]
    public void EventsBulk_EventsOfOneProfile_ShareOneEntryWithTheSingleCallsAttributes()
    {
        var events = new[] { Track("a", "u-1"), Track("b", "u-2"), Track("c", "u-1", "Bought", ",\"revenue\":9.5") };
        var singles = events.Select(First).ToList();

        var call = EventsBulkBuilder.Build(events.Select(EventOf).ToList()).Single();

        var entries = Json(call.Request.Body)["data"]!["attributes"]!["events-bulk-create"]!["data"]!.AsArray();
        Assert.HasCount(2, entries);
        Assert.AreEqual("u-1", (string?)entries[0]!["attributes"]!["profile"]!["data"]!["attributes"]!["external_id"]);
        var bulkEvents = entries[0]!["attributes"]!["events"]!["data"]!.AsArray();
        Assert.HasCount(2, bulkEvents);
        var single = Json(singles[2].Body)["data"]!["attributes"]!.AsObject();
        var singleProfile = single["profile"]!["data"]!.DeepClone();
        single.Remove("profile");
        Assert.IsTrue(JsonNode.DeepEquals(single, bulkEvents[1]!["attributes"]), $"bulk {bulkEvents[1]!["attributes"]} != single {single}");
        Assert.IsTrue(JsonNode.DeepEquals(singleProfile, entries[0]!["attributes"]!["profile"]!["data"]), "the entry's profile is the single call's");
        Assert.AreEqual(9.5, (double?)bulkEvents[1]!["attributes"]!["value"]);
        Assert.AreEqual("0,2", Seq(call.Entries[0].Select(e => e.Single()).ToArray()));
        Assert.AreEqual("1", Seq(call.Entries[1].Select(e => e.Single()).ToArray()));
    }

    [TestMethod]
    public void EventsBulk_2500Events_SplitIntoCallsOfAtMost1000()
    {
        var pieces = Enumerable.Range(0, 2500).Select(i => EventOf(Track($"m-{i}", $"u-{i % 7}"))).ToList();

        var calls = EventsBulkBuilder.Build(pieces);

        Assert.AreEqual("1000,1000,500", Seq(calls.Select(c => c.EventCount).ToArray()));
        Assert.HasCount(2500, calls.SelectMany(c => c.Pieces).Distinct());
    }

    [TestMethod]
    public void EventsBulk_ByteLimit_EveryBodyStaysUnderIt()
    {
        var big = new string('x', 2000);
        var pieces = Enumerable.Range(0, 60).Select(i => EventOf(Track($"m-{i}", $"u-{i}", extra: $",\"pad\":\"{big}\""))).ToList();

        var calls = EventsBulkBuilder.Build(pieces, maxBytes: 20_000);

        Assert.IsGreaterThan(5, calls.Count);
        foreach (var call in calls)
        {
            Assert.IsLessThanOrEqualTo(20_000, call.Request.Body.Length);
            AssertValid(call.Request);
        }
        Assert.HasCount(60, calls.SelectMany(c => c.Pieces));
    }

    [TestMethod]
    public void EventsBulk_SameProfileMetricAndUniqueId_SentOnceCarryingBoth()
    {
        var a = EventOf(Track("dup", "u-1"));
        var b = EventOf(Track("other", "u-2"));
        var again = EventOf(Track("dup", "u-1"));

        var call = EventsBulkBuilder.Build([a, b, again]).Single();

        Assert.AreEqual(2, call.EventCount);
        Assert.AreEqual("0,2", Seq(call.Entries[0][0].ToArray()));
    }

    [TestMethod]
    public void ProfileImportJob_WithAndWithoutList_BodiesMatchProfileImportJobCreateQuery()
    {
        var profiles = MixLines().Select(l => Transforms.Run(l)).OfType<TransformResult.Planned>()
            .Select(p => p.Parts).OfType<ProfileParts>().Select(p => p.Profile).ToList();
        Assert.IsGreaterThan(10, profiles.Count);

        var withList = ProfileImportJobBuilder.Build("LIST1", profiles).Single();
        var withoutList = ProfileImportJobBuilder.Build(null, profiles).Single();
        var singleData = Json(KlaviyoCalls.ProfileImport(profiles[0]).Body)["data"];
        Assert.IsTrue(JsonNode.DeepEquals(singleData, Json(withList.Request.Body)["data"]!["attributes"]!["profiles"]!["data"]![0]), "the job's profile is the single profile-import's data");

        AssertValid(withList.Request);
        AssertValid(withoutList.Request);
        Assert.AreEqual("LIST1", (string?)Json(withList.Request.Body)["data"]!["relationships"]!["lists"]!["data"]![0]!["id"]);
        Assert.IsNull(Json(withoutList.Request.Body)["data"]!["relationships"]);
        Assert.AreEqual(profiles.Count, Json(withList.Request.Body)["data"]!["attributes"]!["profiles"]!["data"]!.AsArray().Count);
    }

    [TestMethod]
    public void ProfileImportJob_25000Profiles_SplitAt10000()
    {
        var profile = ProfileOf(SampleEvents.Identify);
        var calls = ProfileImportJobBuilder.Build(null, Enumerable.Repeat(profile, 25_000).ToList());

        Assert.AreEqual("10000,10000,5000", Seq(calls.Select(c => c.Items.Count).ToArray()));
        Assert.AreEqual(24_999, calls[^1].Items[^1]);
    }

    [TestMethod]
    public void ProfileMerge_TwoUpdatesOfOneProfile_LaterWinsKeyByKeyAndOlderOnlyKeysKept()
    {
        var older = ProfileOf(("""{"type":"identify","userId":"u-1","traits":{"email":"a@example.com","firstName":"Old","city":"Oslo","plan":"free","legacy":1}}"""));
        var newer = ProfileOf(("""{"type":"identify","userId":"u-1","traits":{"email":"a@example.com","firstName":"New","country":"NO","plan":"pro"}}"""));

        var merged = ProfileMerge.Merge([older, newer]);

        var attributes = Json(merged.Data)["attributes"]!;
        Assert.AreEqual("New", (string?)attributes["first_name"]);
        Assert.AreEqual("pro", (string?)attributes["properties"]!["plan"]);
        Assert.AreEqual(1, (int?)attributes["properties"]!["legacy"]);
        Assert.AreEqual("Oslo", (string?)attributes["location"]!["city"]);
        Assert.AreEqual("NO", (string?)attributes["location"]!["country"]);
        Assert.IsTrue(older.IdentityKey.Span.SequenceEqual(merged.IdentityKey.Span), "the merged profile keeps its identity");
        AssertValid(ProfileImportJobBuilder.Build(null, [merged]).Single().Request);
    }

    [TestMethod]
    public void Subscriptions_EachProfileWithItsOwnChannels_BodyMatchesSchemaWithoutProfileIds()
    {
        const string emailEvent = """{"type":"identify","userId":"u-1","traits":{"email":"a@example.com","properties":{"listId":"L1","subscribe":true,"consent":"email"}}}""";
        var email = ListOf(emailEvent);
        var both = ListOf("""{"type":"identify","userId":"u-2","traits":{"email":"b@example.com","phone":"+14155552671","properties":{"listId":"L1","subscribe":true,"consent":["email","sms"]}}}""");
        Assert.AreEqual(ListAction.Subscribe, email.Action);
        Assert.AreEqual("L1", both.ListId);

        var call = SubscriptionBulkBuilder.Build("L1", [email.Subscriber!, both.Subscriber!]).Single();
        var single = Json(Plan(emailEvent).Steps[1].Build("01P").Body)["data"]!["attributes"]!["profiles"]!["data"]![0]!.AsObject();
        Assert.AreEqual("01P", (string?)single["id"]);
        single.Remove("id");

        AssertValid(call.Request);
        var profiles = Json(call.Request.Body)["data"]!["attributes"]!["profiles"]!["data"]!.AsArray();
        Assert.IsNull(profiles[0]!["id"]);
        Assert.IsTrue(JsonNode.DeepEquals(single, profiles[0]), $"bulk {profiles[0]} != single {single} without its id");
        Assert.IsNull(profiles[0]!["attributes"]!["subscriptions"]!["sms"]);
        Assert.AreEqual("SUBSCRIBED", (string?)profiles[1]!["attributes"]!["subscriptions"]!["sms"]!["marketing"]!["consent"]);
        Assert.AreEqual("L1", (string?)Json(call.Request.Body)["data"]!["relationships"]!["list"]!["data"]!["id"]);
    }

    [TestMethod]
    public void Subscriptions_2001Profiles_SplitAt1000()
    {
        var target = ListOf("""{"type":"identify","userId":"u-1","traits":{"email":"a@example.com","properties":{"listId":"L1","subscribe":true,"consent":"email"}}}""");

        var calls = SubscriptionBulkBuilder.Build("L1", Enumerable.Repeat(target.Subscriber!, 2001).ToList());

        Assert.AreEqual("1000,1000,1", Seq(calls.Select(c => c.Items.Count).ToArray()));
    }

    [TestMethod]
    public void ListPart_AddToList_NamesTheListWithoutASubscriber()
    {
        var target = ListOf("""{"type":"identify","userId":"u-1","traits":{"email":"a@example.com","properties":{"listId":"Xy12"}}}""");

        Assert.AreEqual("Xy12", target.ListId);
        Assert.AreEqual(ListAction.Add, target.Action);
    }

    [TestMethod]
    public void ListMembers_2500IdsWithARepeat_CallsOfAtMost1000AndTheRepeatSentOnce()
    {
        var ids = Enumerable.Range(0, 2500).Select(i => $"01PROFILE{i:D6}").Append("01PROFILE000007").ToList();

        var calls = ListMembersBuilder.Build("L1", ids);

        Assert.AreEqual("1000,1000,500", Seq(calls.Select(c => Json(c.Request.Body)["data"]!.AsArray().Count).ToArray()));
        foreach (var call in calls)
        {
            AssertValid(call.Request);
            Assert.AreEqual("/api/lists/L1/relationships/profiles", call.Request.Path);
        }
        Assert.Contains(2500, calls[0].Items);
        Assert.AreEqual(2501, calls.Sum(c => c.Items.Count));
        Assert.HasCount(2, Encoding.UTF8.GetString(calls[0].Request.Body.Span).Split("01PROFILE000007"));
    }
}
