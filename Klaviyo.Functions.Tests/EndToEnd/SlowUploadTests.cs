using System.Net;
using System.Net.Sockets;
using System.Text;
using Klaviyo.Functions.Tests.TestSupport;

namespace Klaviyo.Functions.Tests.EndToEnd;

/// <summary>
/// Issue 18 item 4: the built app in local mode with a small in-flight budget (4 MB), filled by connections that each
/// send 300 KB of a declared 1 MB body (a 512 KB buffer) and then a byte a second. A legitimate 600 KB request (a 1 MB
/// buffer, more than any gap they leave) made while they hold the budget must be accepted (it was 503 for as long as
/// they stayed), and the slow uploads it displaced are answered 408.
/// </summary>
[TestClass]
[DoNotParallelize]
public sealed class SlowUploadTests
{
    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    public async Task SlowUploadsHoldingTheBudget_AreEvictedForALegitimateRequest_WhichIsAccepted()
    {
        using var klaviyo = FakeKlaviyo.Start().Answer("/api/events", 202);
        await using var app = await LocalAppProcess.StartAsync(new Dictionary<string, string>
        {
            ["Klaviyo__PrivateApiKey"] = "pk_slow_uploads",
            ["Klaviyo__BaseUrl"] = klaviyo.BaseUrl,
            ["Local__DeadLetterPath"] = Path.Combine(Path.GetTempPath(), $"klaviyo-slow-{Guid.NewGuid():N}.jsonl"),
            ["Ingest__MaxRequestBytes"] = "1048576",
            ["Ingest__MaxInFlightBodyBytes"] = "4194304",
        });
        var uri = new Uri(app.BaseUrl);
        var attackers = new List<TcpClient>();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(TestContext.CancellationToken);
        try
        {
            for (var i = 0; i < 16; i++)
            {
                var client = new TcpClient();
                await client.ConnectAsync(uri.Host, uri.Port, TestContext.CancellationToken);
                var stream = client.GetStream();
                await stream.WriteAsync(Encoding.ASCII.GetBytes("POST /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1048576\r\n\r\n["), TestContext.CancellationToken);
                await stream.WriteAsync(new byte[300 * 1024].Select(_ => (byte)' ').ToArray(), TestContext.CancellationToken);
                attackers.Add(client);
            }
            var trickle = Task.Run(async () =>
            {
                while (!stop.IsCancellationRequested)
                {
                    await Task.Delay(1000, stop.Token);
                    foreach (var attacker in attackers)
                    {
                        try
                        {
                            await attacker.GetStream().WriteAsync(" "u8.ToArray(), stop.Token);
                        }
                        catch (IOException)
                        {
                        }
                    }
                }
            }, stop.Token);
            await Task.Delay(TimeSpan.FromSeconds(3), TestContext.CancellationToken); // longer than the 2 s slow window

            using var http = new HttpClient { BaseAddress = new Uri(app.BaseUrl), Timeout = TimeSpan.FromSeconds(20) };
            var legit = """[{"type":"track","messageId":"legit-1","userId":"u-1","event":"E"}""" + new string(' ', 600 * 1024) + "]";
            using var response = await http.PostAsync("/api/events", new StringContent(legit, Encoding.UTF8, "application/json"), TestContext.CancellationToken);

            Assert.AreEqual(HttpStatusCode.Accepted, response.StatusCode, await response.Content.ReadAsStringAsync(TestContext.CancellationToken));
            // The evicted connections are closed once answered (a reset can swallow the 408 on the wire): the app's log says it.
            Assert.Contains("Ingest answered 408: a body arriving slower than Ingest__MinBodyBytesPerSecond (16384 bytes/s)", app.Output);
            await stop.CancelAsync();
            await Assert.ThrowsAsync<OperationCanceledException>(() => trickle);
        }
        finally
        {
            await stop.CancelAsync();
            attackers.ForEach(a => a.Dispose());
        }
    }
}
