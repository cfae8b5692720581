using Klaviyo.Functions.Klaviyo;
using Klaviyo.Functions.Tests.TestSupport;

namespace Klaviyo.Functions.Tests.Ingest;

/// <summary>Issue 20: the ordering key is fixed at the ingest (spec 10) and carried with the message; events that are
/// never held carry none; an event with no identifier is refused as before.</summary>
[TestClass]
public sealed class OrderingKeyIngestTests
{
    [TestMethod]
    public async Task Ingest_OrderedEvents_CarryTheirKey_UserIdThenAnonymousIdThenLowerCasedEmailThenE164Phone()
    {
        var host = new IngestHost();

        var response = await host.PostAsync("/api/events", """
            [{"type":"identify","userId":"u-1","anonymousId":"anon-1","traits":{"email":"A@Example.com"}},
             {"type":"Identify","anonymousId":"anon-2","traits":{"email":"b@example.com"}},
             {"type":"identify","traits":{"email":"Mixed.Case@Example.COM","phone":"+14155550132"}},
             {"type":"identify","traits":{"phone":"+1 (415) 555-0132"}},
             {"type":"group","userId":"u-5","groupId":"LIST9"},
             {"type":"delete","userId":"u-6"},
             {"type":"track","userId":"u-1","event":"Paid"},
             {"type":"page","userId":"u-1","name":"Home"},
             {"type":"screen","userId":"u-1","name":"Home"}]
            """);

        Assert.AreEqual(202, response.Status, response.Body.GetRawText());
        var keys = host.Queue.Sent.Select(e => e.Ordering?.Key).ToArray();
        Assert.AreSequenceEqual(new[] { "u-1", "anon-2", "mixed.case@example.com", "+14155550132", "u-5", "u-6", null, null, null }, keys);
        var stamps = host.Queue.Sent.Where(e => e.Ordering is not null).Select(e => e.Ordering!.ReceivedAtMs).Distinct().ToList();
        Assert.AreSequenceEqual(new[] { DateTimeOffset.Parse("2026-11-28T12:30:15.123Z", System.Globalization.CultureInfo.InvariantCulture).ToUnixTimeMilliseconds() }, stamps.ToArray(), "the arrival is the ingest's receivedAt");
    }

    [TestMethod]
    public async Task Ingest_EnforceEmailAsPrimary_KeyIsStillTheUserId()
    {
        var host = new IngestHost(klaviyo: new KlaviyoOptions { PrivateApiKey = "pk_x", EnforceEmailAsPrimary = true });

        var response = await host.PostAsync("/api/events", """{"type":"identify","userId":"u-1","traits":{"email":"a@example.com"}}""");

        Assert.AreEqual(202, response.Status, response.Body.GetRawText());
        Assert.AreEqual("u-1", host.Queue.Sent.Single().Ordering?.Key, "the key names the person, whatever Klaviyo is sent");
    }

    [TestMethod]
    public async Task Ingest_OrderedEventWithoutAnyIdentifier_IsRefusedAsBefore()
    {
        var host = new IngestHost();

        var response = await host.PostAsync("/api/events", """[{"type":"identify","traits":{"firstName":"Nobody"}}]""");

        Assert.AreEqual(400, response.Status);
        Assert.AreEqual("userId", response.Errors.Single().GetProperty("field").GetString());
        Assert.Contains("no user identifier", response.Errors.Single().GetProperty("message").GetString()!);
        Assert.IsEmpty(host.Queue.Sent);
    }
}
