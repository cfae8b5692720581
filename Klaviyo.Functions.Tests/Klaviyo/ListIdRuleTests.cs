using System.Text.Json;
using Klaviyo.Functions.Klaviyo;
using Klaviyo.Functions.Tests.TestSupport;
using Klaviyo.Functions.Transform;
using static Klaviyo.Functions.Tests.TestSupport.TransformAssertions;

namespace Klaviyo.Functions.Tests.Klaviyo;

/// <summary>One list-id rule: the <c>Klaviyo__ListId</c> setting at start-up and <c>listId</c>/<c>groupId</c> per event
/// accept and refuse exactly the same values, with the same words.</summary>
[TestClass]
public sealed class ListIdRuleTests
{
    private static readonly string SixtyFour = new('a', 64);

    public static IEnumerable<object[]> Cases =>
    [
        ["AbC123", true],
        ["7", true],
        [SixtyFour, true],
        [SixtyFour + "b", false], // per event refused this before; start-up let it through
        ["LIST-1", false],
        ["a/b", false],
        ["../admin", false],
        ["list 1", false],
        ["listé", false], // a letter, but not ASCII: it would be escaped into the URL path
        ["１２３", false], // full-width digits
    ];

    private static bool StartUpAccepts(string listId) =>
        !new KlaviyoOptionsValidator().Validate(null, Transforms.Options(o => o.ListId = listId)).Failed;

    private static TransformResult Identify(string listId, string? setting = null) =>
        Transforms.Run("""{"type":"identify","userId":"u-1","traits":{"email":"a@example.com","properties":{"listId":""" + JsonSerializer.Serialize(listId) + "}}}",
            o => o.ListId = setting ?? "");

    private static TransformResult Group(string listId) =>
        Transforms.Run($$"""{"type":"group","userId":"u-1","groupId":{{JsonSerializer.Serialize(listId)}}}""");

    [TestMethod]
    [DynamicData(nameof(Cases))]
    public void ListId_StartUpAndPerEvent_AcceptAndRefuseTheSameValues(string listId, bool valid)
    {
        Assert.AreEqual(valid, ListIds.IsValid(listId));
        Assert.AreEqual(valid, StartUpAccepts(listId), "Klaviyo__ListId at start-up");
        Assert.AreEqual(valid, Identify(listId) is not TransformResult.Invalid, "identify listId");
        Assert.AreEqual(valid, Group(listId) is not TransformResult.Invalid, "group groupId");
    }

    [TestMethod]
    [DynamicData(nameof(Cases))]
    public void ListId_Refused_NamesTheSameRuleAtStartUpAndPerEvent(string listId, bool valid)
    {
        if (valid)
        {
            // A value start-up accepts is used per event as the default list, and the event goes to it.
            var requests = Requests(Transforms.Run("""{"type":"identify","userId":"u-1","traits":{"email":"a@example.com"}}""", o => o.ListId = listId));
            Assert.AreEqual(KlaviyoApi.AddProfilesToListPath(listId), requests[^1].Path);
            return;
        }

        var startUp = new KlaviyoOptionsValidator().Validate(null, Transforms.Options(o => o.ListId = listId)).Failures!.Single();
        Assert.AreEqual($"Klaviyo__ListId: '{listId}' {ListIds.Rule}", startUp);
        Assert.AreEqual(ListIds.Rule, Invalid(Group(listId)).Rule);
        // An event naming the (refused) setting's own value is refused too, not waved through as "the setting".
        var sameAsSetting = Invalid(Identify(listId, setting: listId));
        Assert.AreEqual("traits.properties.listId", sameAsSetting.Field);
        Assert.AreEqual(ListIds.Rule, sameAsSetting.Rule);
    }
}
