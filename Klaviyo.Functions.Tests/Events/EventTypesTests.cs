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
    public void RoutePattern_Always_ListsEveryTypeOfTheEnum()
    {
        Assert.AreEqual(EventTypes.RoutePattern, string.Join("|", EventTypes.All.Select(t => t.WireName())));
        Assert.AreEqual(string.Join(", ", EventTypes.All.Select(t => t.WireName())), EventTypes.NameList);
    }

    [TestMethod]
    public void TypedRoute_ForEveryType_MatchesItsWireNameAndNothingElse()
    {
        var pattern = Regex.Match(IngestFunction.TypedRoute, @"regex\((.*)\)\}$").Groups[1].Value;

        foreach (var type in EventTypes.All)
        {
            Assert.IsTrue(Regex.IsMatch(type.WireName(), pattern), type.ToString());
        }
        Assert.IsFalse(Regex.IsMatch("purchase", pattern));
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
