using System.Text;
using Klaviyo.Functions.Klaviyo;
using Klaviyo.Functions.Tests.TestSupport;
using Klaviyo.Functions.Transform;
using Microsoft.Extensions.Time.Testing;
using static Klaviyo.Functions.Tests.TestSupport.TransformAssertions;

namespace Klaviyo.Functions.Tests.Transform;

/// <summary>The mapping rules are data: one line in <see cref="MappingTables"/> changes what the transform does.</summary>
[TestClass]
public sealed class MappingTablesTests
{
    private static TransformResult Run(MappingTables tables, string json) =>
        new KlaviyoTransformer(Transforms.Options(), new FakeTimeProvider(Transforms.Now), tables).Transform(Encoding.UTF8.GetBytes(json));

    [TestMethod]
    [DataRow("Order Viewed", DisplayName = "plain ASCII name (the byte fast path)")]
    [DataRow("  order VIEWED ", DisplayName = "name that needs trimming (the string path)")]
    [DataRow("Order Vi\\u0065wed", DisplayName = "escaped name (the string path)")]
    public void EcommerceRename_AddedAsOneTableLine_ConvertsTheNameAndProperties(string name)
    {
        var tables = MappingTables.Default with
        {
            EcommerceRenames = [.. MappingTables.Default.EcommerceRenames, ("order viewed", EcommerceEvent.ViewedProduct)],
        };
        var json = """{"type":"track","userId":"u","event":"NAME","properties":{"name":"Boots","sku":"B-1"}}""".Replace("NAME", name, StringComparison.Ordinal);

        var extended = Attributes(Single(Run(tables, json), KlaviyoEndpoint.CreateEvent));
        var standard = Attributes(Single(Run(MappingTables.Default, json), KlaviyoEndpoint.CreateEvent));

        Assert.AreEqual("Viewed Product", (string?)extended["metric"]!["data"]!["attributes"]!["name"]);
        Assert.AreEqual("Boots", (string?)extended["properties"]!["ProductName"]);
        Assert.AreEqual("B-1", (string?)extended["properties"]!["SKU"]);
        Assert.AreNotEqual("Viewed Product", (string?)standard["metric"]!["data"]!["attributes"]!["name"], "without the line the name is kept");
    }

    [TestMethod]
    public void ProfileSource_AddedAsOneTableLine_IsReadAndNoLongerACustomProperty()
    {
        var tables = MappingTables.Default with
        {
            Attributes =
            [
                .. MappingTables.Default.Attributes.Where(a => a.Name != "first_name"),
                new("first_name", AttributeKind.Text, "traitObject.firstName", "traitObject.firstname", "traitObject.first_name", "traitObject.givenName"),
            ],
        };
        const string json = """{"type":"identify","userId":"u","traits":{"givenName":"Ada","plan":"pro"}}""";

        var extended = Attributes(Single(Run(tables, json), KlaviyoEndpoint.ProfileImport));
        var standard = Attributes(Single(Run(MappingTables.Default, json), KlaviyoEndpoint.ProfileImport));

        Assert.AreEqual("Ada", (string?)extended["first_name"]);
        Assert.IsFalse(extended["properties"]!.AsObject().ContainsKey("givenName"), "a key a rule reads is consumed, derived from the table");
        Assert.AreEqual("pro", (string?)extended["properties"]!["plan"]);
        Assert.IsFalse(standard.ContainsKey("first_name"));
        Assert.AreEqual("Ada", (string?)standard["properties"]!["givenName"], "without the line the key is a custom property");
    }

    [TestMethod]
    public void ProfileSource_OfTheWrongType_IsInvalidNamingWhereItWasFound()
    {
        var tables = MappingTables.Default with
        {
            Attributes = [.. MappingTables.Default.Attributes, new("title", AttributeKind.Text, "traitObject.title", "traitObject.jobTitle")],
        };

        var invalid = Invalid(Run(tables, """{"type":"track","userId":"u","event":"X","context":{"traits":{"jobTitle":["a"]}}}"""));

        Assert.AreEqual("context.traits.jobTitle", invalid.Field);
        Assert.AreEqual("must be a string", invalid.Rule);
    }

    [TestMethod]
    public void ConsumedKeys_DerivedFromTheTables_AreSpec42sList()
    {
        string[] spec =
        [
            "firstName", "firstname", "first_name", "lastName", "lastname", "last_name", "organization", "company", "title",
            "image", "avatar", "street", "street2", "address", "city", "region", "state", "country", "zip", "postalCode",
            "postalcode", "timezone", "email", "phone", "userId", "anonymousId", "_kx", "subscribe", "consent", "smsConsent", "listId",
            "removeFromList", "consentedAt",
            "phoneNumber", // Segment's name for phone (spec 4), read after it and consumed like it
        ];

        Assert.AreSequenceEqual(Sorted(spec), Sorted(Mappings.Default.ConsumedTraitKeys.Keys));
        Assert.AreSequenceEqual(Sorted(["listId", "subscribe", "consent", "smsConsent", "removeFromList", "consentedAt"]), Sorted(Mappings.Default.ConsumedControlKeys.Keys));
        Assert.AreSequenceEqual(Sorted(["email", "phone", "phoneNumber", "revenue", "value", "total", "currency"]), Sorted(Mappings.Default.ConsumedEventProperties.Keys));
    }

    private static string[] Sorted(IEnumerable<string> keys) => [.. keys.Order(StringComparer.Ordinal)];

    [TestMethod]
    [DataRow("context.traits.email", "context.traits.email")]
    [DataRow("traitObject.address.city", "traits.address.city")]
    [DataRow("control.listId", "traits.properties.listId")]
    [DataRow("timestamp", "timestamp")]
    public void Source_Path_NamesTheFieldAnErrorReports(string path, string upperField)
    {
        Assert.AreEqual(upperField, new Source(path).UpperField);
    }
}
