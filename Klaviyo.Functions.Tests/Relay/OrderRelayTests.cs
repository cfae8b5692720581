using System.Text;
using System.Text.Json.Nodes;
using Azure.Messaging.ServiceBus;
using Klaviyo.Functions.Klaviyo;
using Klaviyo.Functions.Relay;
using Klaviyo.Functions.Tests.TestSupport;

namespace Klaviyo.Functions.Tests.Relay;

/// <summary>Orders under <c>Klaviyo__OrderCompleted=placedOrder</c> against the fake Klaviyo over HTTP (spec 5, 8.2,
/// 8.3): an order's 1 + N events travel and retry together, one message, one outcome.</summary>
[TestClass]
public sealed class OrderRelayTests
{
    private const string EventsPath = "/api/events";
    private const string BulkPath = "/api/event-bulk-create-jobs";

    private static readonly Dictionary<string, string?> PlacedOrder = new() { ["Klaviyo:OrderCompleted"] = "placedOrder" };

    public TestContext TestContext { get; set; } = null!;

    private static string Order(string messageId, string user, string orderId, int items) =>
        $$"""{"type":"track","messageId":"{{messageId}}","userId":"{{user}}","event":"Order Completed","timestamp":"2026-11-20T10:00:00Z","properties":{"order_id":"{{orderId}}","revenue":{{items * 3}},"currency":"USD","products":[""" +
        string.Join(",", Enumerable.Range(0, items).Select(i => $$"""{"product_id":"P{{i % 50}}","name":"Item {{i}}","price":3,"quantity":1}""")) + "]}}";

    private static ServiceBusReceivedMessage OrderMessage(string messageId, string user, string orderId, int items) =>
        RelayTestHost.Message(Order(messageId, user, orderId, items), messageId);

    private static string UniqueId(string body) => (string)JsonNode.Parse(body)!["data"]!["attributes"]!["unique_id"]!;

    private static JsonArray Entries(string body) => JsonNode.Parse(body)!["data"]!["attributes"]!["events-bulk-create"]!["data"]!.AsArray();

    private static List<string> BulkUniqueIds(string body) =>
        [.. Entries(body).SelectMany(entry => entry!["attributes"]!["events"]!["data"]!.AsArray()).Select(e => (string)e!["attributes"]!["unique_id"]!)];

    [TestMethod]
    public async Task Relay_OrderAnswered429Once_RetriedLaterWithEveryEventAndTheSameUniqueIds()
    {
        // The second call (the first Ordered Product) is answered 429 with a Retry-After past the in-call budget; every
        // other call 202.
        using var klaviyo = FakeKlaviyo.Start();
        var calls = 0;
        klaviyo.Server.Given(WireMock.RequestBuilders.Request.Create().WithPath(EventsPath).UsingPost())
            .RespondWith(WireMock.ResponseBuilders.Response.Create().WithCallback(_ =>
            {
                var call = Interlocked.Increment(ref calls);
                var response = new WireMock.ResponseMessage { StatusCode = call == 2 ? 429 : 202 };
                if (call == 2)
                {
                    response.AddHeader("Retry-After", "120");
                }
                return response;
            }));
        using var host = RelayTestHost.Create(klaviyo.BaseUrl, PlacedOrder);
        var body = Encoding.UTF8.GetBytes(Order("m-o1", "u-1", "1001", 3));

        var first = await host.Processor.ProcessAsync(body, "m-o1", 1, TestContext.CancellationToken);
        var firstIds = klaviyo.Received.Select(r => UniqueId(r.Body)).ToList();
        host.Time!.Advance(((RelayOutcome.RetryLater)first).Delay); // the scheduled copy comes back when it is due
        var second = await host.Processor.ProcessAsync(body, "m-o1", 2, TestContext.CancellationToken);

        var retry = Assert.IsInstanceOfType<RelayOutcome.RetryLater>(first, "a 429 with a long Retry-After retries the whole message later");
        Assert.AreEqual(2, retry.NextAttempt);
        Assert.AreEqual(TimeSpan.FromSeconds(120), retry.Delay);
        Assert.AreSequenceEqual(new[] { "1001", "1001:P0" }, firstIds.ToArray(), "Placed Order first, then the items until the 429");
        Assert.AreEqual(new RelayOutcome.Delivered(4), second);
        var secondIds = klaviyo.Received.Skip(firstIds.Count).Select(r => UniqueId(r.Body)).ToList();
        Assert.AreSequenceEqual(new[] { "1001", "1001:P0", "1001:P1", "1001:P2" }, secondIds.ToArray(), "the retry sends every event again with the same ids (Klaviyo keeps one of each)");
        Assert.IsTrue(klaviyo.Received.All(r => r.Path == EventsPath));
        foreach (var request in klaviyo.Received)
        {
            Assert.IsEmpty(KlaviyoSchemas.Validate(KlaviyoEndpoint.CreateEvent, Encoding.UTF8.GetBytes(request.Body)));
        }
    }

    [TestMethod]
    public async Task Batch_OneOrderOfThreeItemsAlone_OneBulkCallAtOnceNotFourCallsThatWouldOutrunTheLockBudget()
    {
        using var klaviyo = FakeKlaviyo.Start().Answer(BulkPath, 202);
        using var host = RelayTestHost.Create(klaviyo.BaseUrl, PlacedOrder);

        var decision = await Bulk.BulkRelayProcessorTests.Processor(host).ProcessAsync([new BatchMessage("m-o1", Encoding.UTF8.GetBytes(Order("m-o1", "u-1", "1001", 3)), 1)],
            Bulk.BulkRelayProcessorTests.Deadline(host), TestContext.CancellationToken, gather: true);

        Assert.IsInstanceOfType<RelayOutcome.Delivered>(Assert.ContainsSingle(decision.Outcomes), "alone, it is not held back for a fuller call either");
        var call = Assert.ContainsSingle(klaviyo.Received);
        Assert.AreEqual(BulkPath, call.Path);
        Assert.AreSequenceEqual(new[] { "1001", "1001:P0", "1001:P1", "1001:P2" }, BulkUniqueIds(call.Body).ToArray());
    }

    [TestMethod]
    public async Task Relay_TwentyOrdersOfSixtyItemsInOneBatch_BulkCallsOfAtMost1000EventsWithEachOrderWholeInOneCall()
    {
        using var klaviyo = FakeKlaviyo.Start().Answer(BulkPath, 202);
        using var host = RelayTestHost.Create(klaviyo.BaseUrl, PlacedOrder);
        // Seven customers, so several orders share a profile's entry.
        var batch = Enumerable.Range(0, 20).Select(i => OrderMessage($"o-{i}", $"u-{i % 7}", $"order-{i}", 60)).ToList();
        var actions = new RecordingMessageActions();

        await new RelayFunction(host.Settler, host.Queue).RunAsync([.. batch], actions, TestContext.CancellationToken);

        var calls = klaviyo.Received;
        Assert.IsTrue(calls.All(c => c.Path == BulkPath), string.Join(", ", calls.Select(c => c.Path)));
        var idsPerCall = calls.Select(c => BulkUniqueIds(c.Body)).ToList();
        Assert.AreSequenceEqual(new[] { 976, 244 }, idsPerCall.Select(ids => ids.Count).ToArray(), "16 orders of 61 events fill the first call; the 17th would not fit, so it starts the next");
        for (var i = 0; i < 20; i++)
        {
            var order = $"order-{i}";
            var holding = idsPerCall.Where(ids => ids.Any(id => id == order || id.StartsWith(order + ":", StringComparison.Ordinal))).ToList();
            Assert.HasCount(1, holding, $"{order} is in exactly one call");
            Assert.AreEqual(61, holding[0].Count(id => id == order || id.StartsWith(order + ":", StringComparison.Ordinal)), $"{order}: Placed Order and its 60 items");
        }
        foreach (var call in calls)
        {
            Assert.IsEmpty(KlaviyoSchemas.Validate(KlaviyoEndpoint.BulkCreateEvents, Encoding.UTF8.GetBytes(call.Body)));
            Assert.IsLessThan(BulkLimitsBytes, Encoding.UTF8.GetByteCount(call.Body));
        }
        Assert.HasCount(20, actions.Calls);
        Assert.IsTrue(actions.Calls.All(c => c.Action == "Complete"), string.Join(", ", actions.Calls.Select(c => c.Action + " " + c.Reason)));
    }

    private const int BulkLimitsBytes = 5_000_000;

    [TestMethod]
    public async Task Relay_BulkAnswerPointingAtOneOrderedProduct_DeadLettersThatOrderAndResendsTheOthersWhole()
    {
        var pointer = "/data/attributes/events-bulk-create/data/4/attributes/events/data/2/attributes/properties";
        using var klaviyo = FakeKlaviyo.Start().AnswerInTurn(BulkPath,
            (400, FakeKlaviyo.ErrorAnswer(400, "invalid", "Invalid property value.", pointer)),
            (202, null));
        using var host = RelayTestHost.Create(klaviyo.BaseUrl, PlacedOrder);
        var batch = Enumerable.Range(0, 10).Select(i => OrderMessage($"o-{i}", $"u-{i}", $"order-{i}", 3)).ToList();
        var actions = new RecordingMessageActions();

        await new RelayFunction(host.Settler, host.Queue).RunAsync([.. batch], actions, TestContext.CancellationToken);

        var dead = actions.Calls.Single(c => c.Action == "DeadLetter");
        Assert.AreEqual("o-4", dead.MessageId, "entry 4 is the fifth customer's order");
        Assert.AreEqual(nameof(DeadLetterReason.KlaviyoRejected), dead.Reason);
        Assert.Contains("Invalid property value.", dead.Description!);
        Assert.AreEqual(9, actions.Calls.Count(c => c.Action == "Complete"));
        var resent = BulkUniqueIds(klaviyo.Received[1].Body);
        Assert.HasCount(36, resent, "the nine other orders, each with its Placed Order and three items");
        Assert.DoesNotContain(id => id.StartsWith("order-4", StringComparison.Ordinal), resent, "no event of the refused order is sent again");
    }
}
