using Klaviyo.Functions.Klaviyo;
using Klaviyo.Functions.Tests.TestSupport;
using static Klaviyo.Functions.Tests.TestSupport.TransformAssertions;

namespace Klaviyo.Functions.Tests.Transform;

[TestClass]
public sealed class EventTimeTests
{
    private static string Track(string timeFields) =>
        """{"type":"track","userId":"u-1","event":"X",""" + timeFields + "}";

    [TestMethod]
    [DataRow("\"timestamp\":\"2026-11-20T10:00:00Z\",\"originalTimestamp\":\"2026-11-19T10:00:00Z\",\"receivedAt\":\"2026-11-18T10:00:00Z\"", "2026-11-20T10:00:00Z")]
    [DataRow("\"originalTimestamp\":\"2026-11-19T10:00:00Z\",\"receivedAt\":\"2026-11-18T10:00:00Z\"", "2026-11-19T10:00:00Z")]
    [DataRow("\"receivedAt\":\"2026-11-18T10:00:00.123Z\"", "2026-11-18T10:00:00.123Z")]
    [DataRow("\"timestamp\":\"2026-11-20T12:00:00+02:00\"", "2026-11-20T10:00:00Z")]
    [DataRow("\"timestamp\":null,\"originalTimestamp\":\"2026-11-19T10:00:00Z\"", "2026-11-19T10:00:00Z")]
    public void Track_WithTimeFields_SendsFirstPresentAsUtcIso8601(string fields, string expected)
    {
        var attributes = Attributes(Single(Transforms.Run(Track(fields)), KlaviyoEndpoint.CreateEvent));

        Assert.AreEqual(expected, (string?)attributes["time"]);
    }

    [TestMethod]
    [DataRow("\"timestamp\":\"1989-12-31T23:59:59Z\"", "timestamp", "must not be before 1990-01-01", DisplayName = "before 1990")]
    [DataRow("\"originalTimestamp\":\"2027-11-28T12:00:01Z\"", "originalTimestamp", "must not be more than a year in the future", DisplayName = "over a year ahead")]
    [DataRow("\"timestamp\":\"yesterday\"", "timestamp", "must be an ISO-8601 date-time", DisplayName = "unparsable")]
    [DataRow("\"receivedAt\":1732000000", "receivedAt", "must be an ISO-8601 date-time", DisplayName = "number")]
    public void Track_WithBadTime_IsInvalid(string fields, string field, string rule)
    {
        var invalid = Invalid(Transforms.Run(Track(fields)));

        Assert.AreEqual(field, invalid.Field);
        Assert.AreEqual(rule, invalid.Rule);
    }

    [TestMethod]
    public void Track_WithTimeExactlyAYearAhead_IsAccepted()
    {
        var attributes = Attributes(Single(Transforms.Run(Track("\"timestamp\":\"2027-11-28T12:00:00Z\"")), KlaviyoEndpoint.CreateEvent));

        Assert.AreEqual("2027-11-28T12:00:00Z", (string?)attributes["time"]);
    }
}
