using System.Collections.Concurrent;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Klaviyo.Functions.LoadRunner;

/// <summary>
/// A Klaviyo stand-in on 127.0.0.1 that answers at once, optionally enforcing Klaviyo's published per-endpoint
/// limits (fixed windows: burst per second, steady per minute; 429 with Retry-After past either), and counts
/// what it received.
/// </summary>
public sealed class FakeKlaviyo : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ConcurrentDictionary<string, EndpointCounter> _counters = new();
    private readonly bool _enforceLimits;

    private FakeKlaviyo(WebApplication app, bool enforceLimits)
    {
        _app = app;
        _enforceLimits = enforceLimits;
    }

    public string BaseUrl { get; private set; } = "";

    public IReadOnlyDictionary<string, EndpointCounter> Counters => _counters;

    public static async Task<FakeKlaviyo> StartAsync(bool enforceLimits)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        var app = builder.Build();
        var fake = new FakeKlaviyo(app, enforceLimits);
        app.MapPost("/api/{**rest}", fake.HandleAsync);
        await app.StartAsync();
        fake.BaseUrl = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return fake;
    }

    /// <summary>Klaviyo's per-account limits (spec section 8), keyed by the endpoint group.</summary>
    public static (string Group, int Burst, int Steady) LimitsFor(string path) => path switch
    {
        "/api/events" => ("events", 350, 3500),
        "/api/profile-import" => ("profile-import", 75, 750),
        "/api/profile-subscription-bulk-create-jobs" => ("subscriptions", 75, 750),
        _ when path.StartsWith("/api/lists/", StringComparison.Ordinal) => ("list-members", 10, 150),
        _ => ("other", 10, 150),
    };

    private async Task HandleAsync(HttpContext context)
    {
        var path = context.Request.Path.Value ?? "";
        var (group, burst, steady) = LimitsFor(path);
        var counter = _counters.GetOrAdd(group, _ => new EndpointCounter(burst, steady));
        await context.Request.Body.CopyToAsync(Stream.Null);
        if (_enforceLimits && !counter.TryAdmit(DateTimeOffset.UtcNow, out var retryAfter))
        {
            context.Response.StatusCode = 429;
            context.Response.Headers.RetryAfter = retryAfter.ToString(System.Globalization.CultureInfo.InvariantCulture);
            context.Response.ContentType = "application/vnd.api+json";
            await context.Response.WriteAsync($$"""{"errors":[{"id":"x","status":429,"code":"throttled","title":"Request was throttled.","detail":"Request was throttled. Expected available in {{retryAfter}} second(s)."}]}""");
            return;
        }
        counter.Accepted();
        if (path == "/api/profile-import")
        {
            context.Response.StatusCode = 200;
            context.Response.ContentType = "application/vnd.api+json";
            await context.Response.WriteAsync("""{"data":{"type":"profile","id":"01HLOADPROFILE000000000000"}}""");
            return;
        }
        context.Response.StatusCode = path.StartsWith("/api/lists/", StringComparison.Ordinal) ? 204 : 202;
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}

/// <summary>Fixed-window counters for one endpoint group, like Klaviyo's (1 s burst, 60 s steady).</summary>
public sealed class EndpointCounter(int burst, int steady)
{
    private readonly object _gate = new();
    private long _second = -1, _minute = -1;
    private int _inSecond, _inMinute;
    private long _accepted, _throttled, _throttledSteady;
    private DateTimeOffset? _first, _last;
    private readonly SortedDictionary<long, int> _perMinute = new();

    public int Burst => burst;
    public int Steady => steady;
    public long AcceptedCount => Interlocked.Read(ref _accepted);
    public long ThrottledCount => Interlocked.Read(ref _throttled);

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

    public void Accepted()
    {
        var now = DateTimeOffset.UtcNow;
        lock (_gate)
        {
            _accepted++;
            _first ??= now;
            _last = now;
            var minute = now.ToUnixTimeMilliseconds() / 60_000;
            _perMinute[minute] = _perMinute.GetValueOrDefault(minute) + 1;
        }
    }
}
