using System.Text.Json;
using System.Text.RegularExpressions;
using Klaviyo.Functions.Events;
using Klaviyo.Functions.Ingest;

namespace Klaviyo.Functions.Tests.Events;

/// <summary>The enum is the one list of event types; everything that names them follows it.</summary>
[TestClass]
public sealed class EventTypesTests
{
    [TestMethod]
    public void TypedRoute_AnySegment_ReachesTheHandlerWhichParsesWithTheOneParser()
    {
        // The route takes any segment so that an unknown type gets the handler's 404 problem; the type list lives only
        // in the enum, read by EventTypes.TryParse.
        Assert.AreEqual("v1/{type}", IngestFunction.TypedRoute);
        Assert.IsFalse(EventTypes.TryParse("purchase", out _));
    }

    [TestMethod]
    public void TryParse_EveryWireNameInAnyCase_RoundTrips()
    {
        foreach (var type in EventTypes.All)
        {
            var name = type.WireName();
            Assert.IsTrue(EventTypes.TryParse(name.ToUpperInvariant(), out var fromString));
            Assert.AreEqual(type, fromString);
            using var document = JsonDocument.Parse($"[\"{name}\",\"{char.ToUpperInvariant(name[0])}{name[1..]}\"]");
            foreach (var element in document.RootElement.EnumerateArray())
            {
                Assert.IsTrue(EventTypes.TryParse(element, out var fromJson));
                Assert.AreEqual(type, fromJson);
            }
        }
    }

    [TestMethod]
    [DataRow(null)]
    [DataRow("")]
    [DataRow("1")]
    [DataRow("track,page")]
    [DataRow("purchase")]
    public void TryParse_NotATypeName_IsFalse(string? value)
    {
        Assert.IsFalse(EventTypes.TryParse(value, out _));
    }

    [TestMethod]
    public void TryParse_JsonValueThatIsNotAString_IsFalse()
    {
        using var document = JsonDocument.Parse("[1,null,true]");

        foreach (var element in document.RootElement.EnumerateArray())
        {
            Assert.IsFalse(EventTypes.TryParse(element, out _));
        }
    }
}
