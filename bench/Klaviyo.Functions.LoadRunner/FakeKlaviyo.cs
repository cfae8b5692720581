using System.Collections.Concurrent;
using System.Globalization;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Klaviyo.Functions.LoadRunner;

/// <summary>How the fake behaves beyond answering at once.</summary>
public sealed record FakeKlaviyoOptions
{
    /// <summary>Klaviyo's per-endpoint limits: fixed 1 s and 60 s windows, 429 with Retry-After past either.</summary>
    public bool EnforceLimits { get; init; }

    /// <summary>How long after its creation an import job reports <c>complete</c> (until then <c>processing</c>).</summary>
    public TimeSpan JobDelay { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>Share of the profiles of each import job reported in its import errors (0–1), spread evenly.</summary>
    public double ImportErrorShare { get; init; }

    /// <summary>From this long after start, for <see cref="HangFor"/>, every call hangs (answered only when the window
    /// ends, long after the relay's timeout): Klaviyo unresponsive under load, then healthy again.</summary>
    public TimeSpan HangAfter { get; init; }

    /// <summary>How long calls hang; zero (the default) never.</summary>
    public TimeSpan HangFor { get; init; }

    /// <summary>After the hang, subscription jobs to <see cref="FailSubscriptionsList"/> answer 503 this much longer while
    /// the rest is healthy: those subscribers retry while the import job that also carries the other list's subscribers
    /// is accepted (the tickets that carried profiles without messages).</summary>
    public TimeSpan FailSubscriptionsFor { get; init; }

    /// <summary>From this long after start, for <see cref="ThrottleFor"/>, every call is answered 429 with
    /// <c>Retry-After: 1</c>: a Klaviyo that throttles everything for a while.</summary>
    public TimeSpan ThrottleAfter { get; init; }

    /// <summary>How long every call is throttled; zero (the default) never.</summary>
    public TimeSpan ThrottleFor { get; init; }

    /// <summary>The <c>Retry-After</c> (seconds) of those 429s.</summary>
    public int ThrottleRetryAfter { get; init; } = 1;

    /// <summary>The list whose subscription jobs <see cref="FailSubscriptionsFor"/> fails.</summary>
    public string FailSubscriptionsList { get; init; } = "LIST2";
}

/// <summary>
/// A Klaviyo stand-in on 127.0.0.1 that answers at once, optionally enforcing Klaviyo's published per-endpoint
/// limits (fixed windows: burst per second, steady per minute; 429 with Retry-After past either, and
/// <c>RateLimit-Limit/Remaining/Reset</c> on every other answer), with the bulk endpoints: event bulk jobs (counts the
/// events), profile import jobs that complete after <see cref="FakeKlaviyoOptions.JobDelay"/> and report a share of
/// their profiles as import errors, subscription jobs and list members. Counts what it received.
/// </summary>
public sealed class FakeKlaviyo : IAsyncDisposable
{
    public const int ErrorsPageSize = 100;

    private readonly WebApplication _app;
    private readonly ConcurrentDictionary<string, EndpointCounter> _counters = new();
    private readonly ConcurrentDictionary<string, ImportJob> _jobs = new();
    private readonly FakeKlaviyoOptions _options;
    private readonly ConcurrentDictionary<string, TaskCompletionSource<DateTimeOffset>> _watches = new();
    private readonly ConcurrentQueue<(string Path, byte[] Body)> _samples = new();
    private long _jobSequence;
    private long _bulkEvents;
    private long _importedProfiles;
    private long _hung;
    private readonly DateTimeOffset _started = DateTimeOffset.UtcNow;

    private FakeKlaviyo(WebApplication app, FakeKlaviyoOptions options)
    {
        _app = app;
        _options = options;
    }

    public string BaseUrl { get; private set; } = "";

    public IReadOnlyDictionary<string, EndpointCounter> Counters => _counters;

    /// <summary>Events received in accepted event bulk calls.</summary>
    public long BulkEvents => Interlocked.Read(ref _bulkEvents);

    /// <summary>Calls that hung (<see cref="FakeKlaviyoOptions.HangFor"/>).</summary>
    public long Hung => Interlocked.Read(ref _hung);

    /// <summary>Profiles received in accepted import jobs.</summary>
    public long ImportedProfiles => Interlocked.Read(ref _importedProfiles);

    /// <summary>Most bodies kept per POST path in <see cref="Samples"/>.</summary>
    public const int SamplesPerPath = 20;

    /// <summary>The first <see cref="SamplesPerPath"/> accepted POST bodies of each path (lists share one), to replay
    /// the relay's own calls straight to a fake as a floor.</summary>
    public IReadOnlyList<(string Path, byte[] Body)> Samples => [.. _samples];

    /// <summary>When an accepted request whose body contains <paramref name="token"/> (UTF-8) arrived; the watch is
    /// set before the call that should cause it, and ends at the first such request.</summary>
    public Task<DateTimeOffset> WaitForReceiptAsync(string token, TimeSpan timeout)
    {
        var watch = _watches.GetOrAdd(token, _ => new TaskCompletionSource<DateTimeOffset>(TaskCreationOptions.RunContinuationsAsynchronously));
        return watch.Task.WaitAsync(timeout).ContinueWith(t =>
        {
            _watches.TryRemove(token, out _);
            return t.GetAwaiter().GetResult();
        }, TaskScheduler.Default);
    }

    public static Task<FakeKlaviyo> StartAsync(bool enforceLimits) => StartAsync(new FakeKlaviyoOptions { EnforceLimits = enforceLimits });

    public static async Task<FakeKlaviyo> StartAsync(FakeKlaviyoOptions options)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        var app = builder.Build();
        var fake = new FakeKlaviyo(app, options);
        app.MapPost("/api/{**rest}", fake.HandleAsync);
        app.MapGet("/api/{**rest}", fake.HandleAsync);
        await app.StartAsync();
        fake.BaseUrl = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return fake;
    }

    /// <summary>Klaviyo's per-account limits (spec section 8), keyed by the endpoint group; each group has its own budget.</summary>
    public static (string Group, int Burst, int Steady) LimitsFor(string method, string path) => (method, path) switch
    {
        ("POST", "/api/events") => ("events", 350, 3500),
        ("POST", "/api/event-bulk-create-jobs") => ("event-bulk", 10, 150),
        ("POST", "/api/profile-import") => ("profile-import", 75, 750),
        ("POST", "/api/profile-bulk-import-jobs") => ("profile-bulk-import", 10, 150),
        ("GET", _) when path.StartsWith("/api/profile-bulk-import-jobs/", StringComparison.Ordinal) && path.EndsWith("/import-errors", StringComparison.Ordinal) => ("import-errors", 10, 150),
        ("GET", _) when path.StartsWith("/api/profile-bulk-import-jobs/", StringComparison.Ordinal) => ("import-job", 10, 150),
        ("POST", "/api/profile-subscription-bulk-create-jobs") => ("subscriptions", 75, 750),
        ("POST", _) when path.StartsWith("/api/lists/", StringComparison.Ordinal) => ("list-members", 10, 150),
        _ => ("other", 10, 150),
    };

    /// <summary>The POST groups, as before the bulk endpoints (kept for callers that only send POSTs).</summary>
    public static (string Group, int Burst, int Steady) LimitsFor(string path) => LimitsFor("POST", path);

    private async Task HandleAsync(HttpContext context)
    {
        var path = context.Request.Path.Value ?? "";
        var method = context.Request.Method;
        var hangEnds = _started + _options.HangAfter + _options.HangFor;
        if (_options.HangFor > TimeSpan.Zero && DateTimeOffset.UtcNow >= _started + _options.HangAfter && DateTimeOffset.UtcNow < hangEnds)
        {
            Interlocked.Increment(ref _hung);
            try
            {
                await Task.Delay(hangEnds - DateTimeOffset.UtcNow, context.RequestAborted);
            }
            catch (OperationCanceledException)
            {
                return; // the caller gave up, as against a hanging Klaviyo
            }
        }
        var (group, burst, steady) = LimitsFor(method, path);
        var counter = _counters.GetOrAdd(group, _ => new EndpointCounter(burst, steady));
        using var body = new MemoryStream();
        await context.Request.Body.CopyToAsync(body);
        var now = DateTimeOffset.UtcNow;
        var throttled = _options.ThrottleFor > TimeSpan.Zero && now >= _started + _options.ThrottleAfter && now < _started + _options.ThrottleAfter + _options.ThrottleFor;
        var retryAfter = _options.ThrottleRetryAfter;
        if (throttled ? counter.Throttle() : _options.EnforceLimits && !counter.TryAdmit(now, out retryAfter))
        {
            context.Response.StatusCode = 429;
            context.Response.Headers.RetryAfter = retryAfter.ToString(CultureInfo.InvariantCulture);
            context.Response.ContentType = "application/vnd.api+json";
            await context.Response.WriteAsync($$"""{"errors":[{"id":"x","status":429,"code":"throttled","title":"Request was throttled.","detail":"Request was throttled. Expected available in {{retryAfter}} second(s)."}]}""");
            return;
        }
        if (group == "subscriptions" && _options.FailSubscriptionsFor > TimeSpan.Zero && now >= hangEnds && now < hangEnds + _options.FailSubscriptionsFor
            && System.Text.Encoding.UTF8.GetString(body.ToArray()).Contains($"\"type\":\"list\",\"id\":\"{_options.FailSubscriptionsList}\"", StringComparison.Ordinal))
        {
            await Json(context, 503, """{"errors":[{"id":"x","status":503,"code":"service_unavailable","title":"Service unavailable.","detail":"Try again later."}]}""");
            return;
        }
        var bytes = body.ToArray();
        counter.Accepted(ItemsCarried(group, bytes));
        Observe(group, method, path, bytes, now);
        var (limit, remaining, reset) = counter.Budget(now);
        context.Response.Headers["RateLimit-Limit"] = limit.ToString(CultureInfo.InvariantCulture);
        context.Response.Headers["RateLimit-Remaining"] = remaining.ToString(CultureInfo.InvariantCulture);
        context.Response.Headers["RateLimit-Reset"] = reset.ToString(CultureInfo.InvariantCulture);

        switch (group)
        {
            case "profile-import":
                await Json(context, 200, """{"data":{"type":"profile","id":"01HLOADPROFILE000000000000"}}""");
                return;
            case "event-bulk":
                Interlocked.Add(ref _bulkEvents, CountEvents(bytes));
                context.Response.StatusCode = 202;
                return;
            case "profile-bulk-import":
                await CreateJobAsync(context, bytes, now);
                return;
            case "import-job":
                await JobStatusAsync(context, path["/api/profile-bulk-import-jobs/".Length..], now);
                return;
            case "import-errors":
                await ImportErrorsAsync(context, path["/api/profile-bulk-import-jobs/".Length..^"/import-errors".Length]);
                return;
            case "list-members":
                context.Response.StatusCode = 204;
                return;
            default:
                context.Response.StatusCode = 202;
                return;
        }
    }

    private static Task Json(HttpContext context, int status, string json)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "application/vnd.api+json";
        return context.Response.WriteAsync(json);
    }

    private void Observe(string group, string method, string path, byte[] body, DateTimeOffset now)
    {
        if (method == "POST" && _samples.Count(s => s.Path == path || (group == "list-members" && s.Path.StartsWith("/api/lists/", StringComparison.Ordinal))) < SamplesPerPath)
        {
            _samples.Enqueue((path, body));
        }
        if (_watches.IsEmpty)
        {
            return;
        }
        var text = System.Text.Encoding.UTF8.GetString(body);
        foreach (var (token, watch) in _watches)
        {
            if (text.Contains(token, StringComparison.Ordinal))
            {
                watch.TrySetResult(now);
            }
        }
    }

    /// <summary>What one accepted call carried: events for event calls, profiles for profile and subscription calls,
    /// members for list calls; 0 for job status reads.</summary>
    public static int ItemsCarried(string group, byte[] body)
    {
        try
        {
            using var document = JsonDocument.Parse(body.Length == 0 ? "{}"u8.ToArray() : body);
            var root = document.RootElement;
            return group switch
            {
                "event-bulk" => CountEvents(body),
                "profile-bulk-import" or "subscriptions" => root.GetProperty("data").GetProperty("attributes").GetProperty("profiles").GetProperty("data").GetArrayLength(),
                "list-members" => root.GetProperty("data").ValueKind == JsonValueKind.Array ? root.GetProperty("data").GetArrayLength() : 1,
                "events" or "profile-import" => 1,
                _ => 0,
            };
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
        {
            return 0;
        }
    }

    private static int CountEvents(byte[] body)
    {
        try
        {
            using var document = JsonDocument.Parse(body);
            return document.RootElement.GetProperty("data").GetProperty("attributes").GetProperty("events-bulk-create").GetProperty("data")
                .EnumerateArray().Sum(entry => entry.GetProperty("attributes").GetProperty("events").GetProperty("data").GetArrayLength());
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
        {
            return 0;
        }
    }

    private async Task CreateJobAsync(HttpContext context, byte[] body, DateTimeOffset now)
    {
        List<string> profiles;
        try
        {
            using var document = JsonDocument.Parse(body);
            profiles = document.RootElement.GetProperty("data").GetProperty("attributes").GetProperty("profiles").GetProperty("data")
                .EnumerateArray().Select(p => p.GetProperty("attributes").GetRawText()).ToList();
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
        {
            await Json(context, 400, """{"errors":[{"id":"x","status":400,"code":"invalid","title":"Invalid input.","detail":"not a profile import job","source":{"pointer":"/data"}}]}""");
            return;
        }
        var id = "JOB" + Interlocked.Increment(ref _jobSequence).ToString("D8", CultureInfo.InvariantCulture);
        var job = new ImportJob(id, now, profiles, FailingProfiles(profiles.Count, _options.ImportErrorShare));
        _jobs[id] = job;
        Interlocked.Add(ref _importedProfiles, profiles.Count);
        await Json(context, 202, JobDocument(job, "queued"));
    }

    /// <summary>Which profiles of a job fail: <paramref name="share"/> of them, spread evenly (deterministic).</summary>
    public static IReadOnlySet<int> FailingProfiles(int count, double share)
    {
        var failing = new HashSet<int>();
        if (share <= 0)
        {
            return failing;
        }
        var target = (int)Math.Round(count * Math.Min(1, share));
        for (var k = 0; k < target; k++)
        {
            failing.Add((int)((long)k * count / target));
        }
        return failing;
    }

    private Task JobStatusAsync(HttpContext context, string id, DateTimeOffset now)
    {
        if (!_jobs.TryGetValue(id, out var job))
        {
            return Json(context, 404, """{"errors":[{"id":"x","status":404,"code":"not_found","title":"Not found.","detail":"no such job"}]}""");
        }
        return Json(context, 200, JobDocument(job, now - job.Created >= _options.JobDelay ? "complete" : "processing"));
    }

    private static string JobDocument(ImportJob job, string status)
    {
        var complete = status == "complete";
        var failed = complete ? job.Failing.Count : 0;
        var completed = complete ? job.Profiles.Count - failed : 0;
        return "{\"data\":{\"type\":\"profile-bulk-import-job\",\"id\":\"" + job.Id + "\",\"attributes\":{\"status\":\"" + status
            + "\",\"created_at\":\"" + job.Created.ToString("O", CultureInfo.InvariantCulture) + "\",\"total_count\":" + job.Profiles.Count.ToString(CultureInfo.InvariantCulture)
            + ",\"completed_count\":" + completed.ToString(CultureInfo.InvariantCulture) + ",\"failed_count\":" + failed.ToString(CultureInfo.InvariantCulture) + "}}}";
    }

    private Task ImportErrorsAsync(HttpContext context, string id)
    {
        if (!_jobs.TryGetValue(id, out var job))
        {
            return Json(context, 404, """{"errors":[{"id":"x","status":404,"code":"not_found","title":"Not found.","detail":"no such job"}]}""");
        }
        var cursor = int.TryParse(context.Request.Query["page[cursor]"], NumberStyles.None, CultureInfo.InvariantCulture, out var c) ? c : 0;
        var failing = job.Failing.Order().ToList();
        var page = failing.Skip(cursor).Take(ErrorsPageSize).ToList();
        var items = page.Select(k => "{\"type\":\"import-error\",\"id\":\"" + job.Id + "-" + k.ToString(CultureInfo.InvariantCulture)
            + "\",\"attributes\":{\"code\":\"invalid\",\"title\":\"Invalid input.\",\"detail\":\"profile " + k.ToString(CultureInfo.InvariantCulture)
            + " was refused by the fake\",\"source\":{\"pointer\":\"/data/attributes/profiles/data/" + k.ToString(CultureInfo.InvariantCulture)
            + "\"},\"original_payload\":" + job.Profiles[k] + "}}");
        var next = cursor + ErrorsPageSize < failing.Count
            ? "\"" + BaseUrl + "/api/profile-bulk-import-jobs/" + job.Id + "/import-errors?page%5Bcursor%5D=" + (cursor + ErrorsPageSize).ToString(CultureInfo.InvariantCulture) + "\""
            : "null";
        return Json(context, 200, "{\"data\":[" + string.Join(",", items) + "],\"links\":{\"self\":\"x\",\"next\":" + next + "}}");
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    private sealed record ImportJob(string Id, DateTimeOffset Created, IReadOnlyList<string> Profiles, IReadOnlySet<int> Failing);
}

/// <summary>Fixed-window counters for one endpoint group, like Klaviyo's (1 s burst, 60 s steady).</summary>
public sealed class EndpointCounter(int burst, int steady)
{
    private readonly object _gate = new();
    private long _second = -1, _minute = -1;
    private int _inSecond, _inMinute;
    private long _accepted, _throttled, _throttledSteady, _items;
    private DateTimeOffset? _first, _last;
    private readonly SortedDictionary<long, int> _perMinute = new();

    public int Burst => burst;
    public int Steady => steady;
    public long AcceptedCount => Interlocked.Read(ref _accepted);
    public long ThrottledCount => Interlocked.Read(ref _throttled);

    /// <summary>Events, profiles or list members carried by the accepted calls (see <see cref="FakeKlaviyo.ItemsCarried"/>).</summary>
    public long ItemCount => Interlocked.Read(ref _items);

    /// <summary>Of <see cref="ThrottledCount"/>, those refused by the 60 s window (the rest by the 1 s window).</summary>
    public long ThrottledSteadyCount => Interlocked.Read(ref _throttledSteady);
    public DateTimeOffset? FirstAccepted => _first;
    public DateTimeOffset? LastAccepted => _last;

    /// <summary>Accepted requests per fixed minute window, oldest first.</summary>
    public IReadOnlyList<int> PerMinute()
    {
        lock (_gate)
        {
            return _perMinute.Values.ToList();
        }
    }

    /// <summary>Counts a call refused by a throttling Klaviyo; always true (the caller answers 429).</summary>
    public bool Throttle()
    {
        lock (_gate)
        {
            _throttled++;
        }
        return true;
    }

    public bool TryAdmit(DateTimeOffset now, out int retryAfterSeconds)
    {
        var unix = now.ToUnixTimeMilliseconds();
        lock (_gate)
        {
            var second = unix / 1000;
            var minute = unix / 60_000;
            if (second != _second) { _second = second; _inSecond = 0; }
            if (minute != _minute) { _minute = minute; _inMinute = 0; }
            if (_inMinute >= steady)
            {
                retryAfterSeconds = (int)Math.Max(1, Math.Ceiling(((minute + 1) * 60_000 - unix) / 1000.0));
                _throttled++;
                _throttledSteady++;
                return false;
            }
            if (_inSecond >= burst)
            {
                retryAfterSeconds = 1;
                _throttled++;
                return false;
            }
            _inSecond++;
            _inMinute++;
            retryAfterSeconds = 0;
            return true;
        }
    }

    /// <summary>The steady window as Klaviyo's <c>RateLimit-*</c> headers describe it: limit, remaining, seconds to reset.</summary>
    public (int Limit, int Remaining, int ResetSeconds) Budget(DateTimeOffset now)
    {
        var unix = now.ToUnixTimeMilliseconds();
        lock (_gate)
        {
            var minute = unix / 60_000;
            var used = minute == _minute ? _inMinute : 0;
            var reset = (int)Math.Max(1, Math.Ceiling(((minute + 1) * 60_000 - unix) / 1000.0));
            return (steady, Math.Max(0, steady - used), reset);
        }
    }

    public void Accepted(int items = 0)
    {
        var now = DateTimeOffset.UtcNow;
        lock (_gate)
        {
            _accepted++;
            _items += items;
            _first ??= now;
            _last = now;
            var minute = now.ToUnixTimeMilliseconds() / 60_000;
            _perMinute[minute] = _perMinute.GetValueOrDefault(minute) + 1;
        }
    }
}
