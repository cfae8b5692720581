using System.Diagnostics;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Klaviyo.Functions.Ingest;
using Klaviyo.Functions.Klaviyo;
using Klaviyo.Functions.Local;
using Klaviyo.Functions.Queue;
using Klaviyo.Functions.Transform;
using Microsoft.Extensions.Configuration;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Klaviyo.Functions.Benchmarks;

/// <summary>
/// `--ingest`: the ingest (signature, content type, all-or-nothing validation with the transform's checks, one queue
/// message per event into local mode's in-memory queue, drained and discarded) beside its floor, a bare endpoint on
/// the same Kestrel server that only parses the same bodies with <see cref="JsonDocument"/>. The mix is posted as
/// arrays of 100 events by a closed loop of concurrent senders; floor and ingest phases alternate, and the ratio of
/// their accepted events per second is what carries to another machine.
/// </summary>
public static class IngestBenchmark
{
    public const string FloorPath = "/floor";
    public const string IngestPath = "/api/events";

    public static async Task RunAsync(double secondsPerPhase, int rounds, int concurrency)
    {
        var events = EventMix.Load();
        var batches = events.Chunk(100).Select(chunk => (Body: Join(chunk), Count: chunk.Length)).ToArray();

        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        var settings = EventMix.Settings();
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Klaviyo:PrivateApiKey"] = settings.PrivateApiKey,
            ["Klaviyo:ListId"] = settings.ListId,
            ["Klaviyo:SendPageAsTrack"] = "true",
            ["Klaviyo:AdditionalPageInfo"] = "true",
        });
        var services = builder.Services;
        services.AddKlaviyoOptions();
        services.AddKlaviyoTransform();
        services.AddIngestHandler();
        services.AddSingleton<CountingQueue>();
        services.AddSingleton<IEventQueue>(sp => sp.GetRequiredService<CountingQueue>());

        await using var app = builder.Build();
        app.MapPost(IngestPath, async context =>
        {
            var handler = context.RequestServices.GetRequiredService<IngestHandler>();
            var result = await handler.HandleAsync(IngestFunction.ToIngestRequest(context.Request, null), context.RequestAborted);
            await IngestActionResult.WriteAsync(context, result);
        });
        app.MapPost(FloorPath, Floor);
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();

        // The queue's place: count every accepted event and drop it (the ingest's own work is measured, not a queue's).
        var queue = app.Services.GetRequiredService<CountingQueue>();

        using var http = new HttpClient { BaseAddress = new Uri(address) };
        await Phase(http, FloorPath, batches, concurrency, TimeSpan.FromSeconds(3));
        await Phase(http, IngestPath, batches, concurrency, TimeSpan.FromSeconds(3));

        var floorTotal = new Run();
        var ingestTotal = new Run();
        for (var round = 1; round <= rounds; round++)
        {
            var floor = await Phase(http, FloorPath, batches, concurrency, TimeSpan.FromSeconds(secondsPerPhase));
            var ingest = await Phase(http, IngestPath, batches, concurrency, TimeSpan.FromSeconds(secondsPerPhase));
            Console.WriteLine($"round {round}: floor {floor.PerSecond:N0} events/s, ingest {ingest.PerSecond:N0} events/s, ratio {ingest.PerSecond / floor.PerSecond:N3}" +
                (floor.Failed + ingest.Failed > 0 ? $" ({floor.Failed} + {ingest.Failed} failed requests)" : ""));
            floorTotal.Add(floor);
            ingestTotal.Add(ingest);
        }
        await app.StopAsync();
        var drained = queue.Count;

        Console.WriteLine($"floor (Kestrel + JsonDocument.Parse of the body): {floorTotal.PerSecond:N0} events/s accepted");
        Console.WriteLine($"ingest (validated, counted and dropped):          {ingestTotal.PerSecond:N0} events/s accepted ({ingestTotal.Failed} failed requests, {drained:N0} events queued)");
        Console.WriteLine($"ingest / floor: {ingestTotal.PerSecond / floorTotal.PerSecond:N3} (batches of 100, {concurrency} senders, {rounds} × {secondsPerPhase:N1} s per side alternating, {Environment.ProcessorCount} cores, .NET {Environment.Version})");
    }

    private static byte[] Join(byte[][] chunk)
    {
        var body = new List<byte>(chunk.Sum(e => e.Length + 1) + 1) { (byte)'[' };
        for (var i = 0; i < chunk.Length; i++)
        {
            if (i > 0)
            {
                body.Add((byte)',');
            }
            body.AddRange(chunk[i]);
        }
        body.Add((byte)']');
        return [.. body];
    }

    /// <summary>The floor: read the body, parse it with JsonDocument, answer how many elements it has.</summary>
    private static async Task Floor(HttpContext context)
    {
        using var buffer = new MemoryStream();
        await context.Request.Body.CopyToAsync(buffer, context.RequestAborted);
        int count;
        using (var document = JsonDocument.Parse(buffer.GetBuffer().AsMemory(0, (int)buffer.Length)))
        {
            count = document.RootElement.GetArrayLength();
        }
        context.Response.StatusCode = 202;
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync($"{{\"accepted\":{count}}}", context.RequestAborted);
    }

    private static async Task<Run> Phase(HttpClient http, string path, (byte[] Body, int Count)[] batches, int concurrency, TimeSpan duration)
    {
        var run = new Run();
        var next = -1;
        var watch = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, concurrency).Select(async _ =>
        {
            while (watch.Elapsed < duration)
            {
                var (body, count) = batches[(Interlocked.Increment(ref next) & int.MaxValue) % batches.Length];
                using var content = new ByteArrayContent(body);
                content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
                using var response = await http.PostAsync(path, content);
                await response.Content.CopyToAsync(Stream.Null);
                if ((int)response.StatusCode == 202)
                {
                    Interlocked.Add(ref run.Accepted, count);
                }
                else
                {
                    Interlocked.Increment(ref run.Failed);
                }
            }
        }));
        run.Elapsed = watch.Elapsed;
        return run;
    }

    private sealed class Run
    {
        public long Accepted;
        public long Failed;
        public TimeSpan Elapsed;

        public double PerSecond => Accepted / Elapsed.TotalSeconds;

        public void Add(Run other)
        {
            Accepted += other.Accepted;
            Failed += other.Failed;
            Elapsed += other.Elapsed;
        }
    }

    /// <summary>An <see cref="IEventQueue"/> that counts and drops, so the benchmark measures the ingest alone.</summary>
    private sealed class CountingQueue : IEventQueue
    {
        private long _count;

        public long Count => Interlocked.Read(ref _count);

        public Task SendAsync(IReadOnlyList<QueuedEvent> events, CancellationToken cancellationToken = default)
        {
            Interlocked.Add(ref _count, events.Count);
            return Task.CompletedTask;
        }

        public Task ScheduleAsync(QueuedEvent queuedEvent, DateTimeOffset enqueueAt, CancellationToken cancellationToken = default) => Task.CompletedTask;
    }
}
