using Klaviyo.Functions.Bulk;
using Klaviyo.Functions.Klaviyo;
using Klaviyo.Functions.Tests.TestSupport;
using Klaviyo.Functions.Transform;

namespace Klaviyo.Functions.Tests.Bulk;

/// <summary>Spec 8.3: an order's Placed Order and Ordered Products are entries of the event bulk call like any other
/// event, and an order whose 1 + N events would not fit a call's room goes whole into the next.</summary>
[TestClass]
public sealed class OrderPackingTests
{
    private static IReadOnlyList<EventPart> OrderOf(string messageId, string user, int items) =>
        ((EventParts)TransformAssertions.Planned(Transforms.Run(
            $$"""{"type":"track","messageId":"{{messageId}}","userId":"{{user}}","event":"Order Completed","timestamp":"2026-11-20T10:00:00Z","properties":{"order_id":"{{messageId}}","products":[""" +
            string.Join(",", Enumerable.Range(0, items).Select(i => $$"""{"product_id":"P{{i}}","price":1}""")) + "]}}",
            o => o.OrderCompleted = KlaviyoOptions.OrderCompletedAsPlacedOrder)).Parts).Events;

    private static IReadOnlyList<IReadOnlyList<int>> MessagesPerCall(IReadOnlyList<EventsBulkCall> calls) =>
        calls.Select(c => (IReadOnlyList<int>)c.Pieces.Distinct().Order().ToList()).ToList();

    [TestMethod]
    public void BuildMessages_OrderThatDoesNotFitTheEventsLeft_StartsTheNextCallWhole()
    {
        // 4 events each; with room for 10 the third order would be split 2 + 2.
        var orders = new[] { OrderOf("o-0", "u-0", 3), OrderOf("o-1", "u-1", 3), OrderOf("o-2", "u-2", 3) };

        var calls = EventsBulkBuilder.BuildMessages(orders, maxEvents: 10);

        Assert.AreSequenceEqual(new[] { 8, 4 }, calls.Select(c => c.EventCount).ToArray());
        Assert.AreSequenceEqual(new[] { "0,1", "2" }, MessagesPerCall(calls).Select(m => string.Join(",", m)).ToArray());
        calls.ToList().ForEach(c => KlaviyoSchemas.AssertValid(c.Request));
    }

    [TestMethod]
    public void BuildMessages_OrderThatDoesNotFitTheBytesLeft_StartsTheNextCallWhole()
    {
        var orders = new[] { OrderOf("o-0", "u-0", 3), OrderOf("o-1", "u-1", 3) };
        var oneOrder = EventsBulkBuilder.BuildMessages([orders[0]]).Single().Request.Body.Length;

        var calls = EventsBulkBuilder.BuildMessages(orders, maxBytes: oneOrder + 600);

        Assert.AreSequenceEqual(new[] { "0", "1" }, MessagesPerCall(calls).Select(m => string.Join(",", m)).ToArray());
        Assert.IsTrue(calls.All(c => c.EventCount == 4), "each order whole");
    }

    [TestMethod]
    public void BuildMessages_SameOrderSentTwiceUnderTwoMessageIds_SentOnceAndBothMessagesInTheSameCall()
    {
        var first = OrderOf("o-1", "u-1", 2);
        var again = ((EventParts)TransformAssertions.Planned(Transforms.Run(
            """{"type":"track","messageId":"o-1-again","userId":"u-1","event":"Order Completed","timestamp":"2026-11-20T10:00:00Z","properties":{"order_id":"o-1","products":[{"product_id":"P0","price":1},{"product_id":"P1","price":1}]}}""",
            o => o.OrderCompleted = KlaviyoOptions.OrderCompletedAsPlacedOrder)).Parts).Events;
        var filler = Enumerable.Range(0, 3).Select(i => OrderOf($"f-{i}", $"f-{i}", 2)).ToList();

        var calls = EventsBulkBuilder.BuildMessages([first, .. filler, again], maxEvents: 6);

        var holding = calls.Where(c => c.Pieces.Contains(0)).ToList();
        Assert.HasCount(1, holding);
        Assert.Contains(4, holding[0].Pieces.ToList(), "the repeat is carried by the first order's events, in its call");
        Assert.AreEqual(12, calls.Sum(c => c.EventCount), "4 orders of 3 events; the repeat adds none");
    }

    [TestMethod]
    public void BuildMessages_OneEventPerMessage_PacksAsBefore()
    {
        var events = Enumerable.Range(0, 25).Select(i => ((EventParts)TransformAssertions.Planned(Transforms.Run(
            $$"""{"type":"track","messageId":"m-{{i}}","userId":"u-{{i % 3}}","event":"Clicked"}""")).Parts).Events).ToList();

        var calls = EventsBulkBuilder.BuildMessages(events, maxEvents: 10);

        Assert.AreSequenceEqual(new[] { 10, 10, 5 }, calls.Select(c => c.EventCount).ToArray(), "single events still fill every call");
    }
}
