using System.Text.Json;
using Klaviyo.Functions.Diagnostics;
using Klaviyo.Functions.Ingest;
using Klaviyo.Functions.Klaviyo;
using Klaviyo.Functions.Queue;
using Klaviyo.Functions.Relay;
using Klaviyo.Functions.Transform;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Klaviyo.Functions.Local;

/// <summary>
/// Local mode (spec section 9): the same ingest handler, transform, Klaviyo client and relay processor, hosted in one
/// ASP.NET Core process with an in-process queue and a dead-letter file — no Azure, Docker or Core Tools.
/// </summary>
public static class LocalHost
{
    public const string Switch = "--local";
    public const string DefaultUrl = "http://localhost:7071";

    /// <summary>How long a stopping app keeps answering new ingest requests 503 before closing its listener.</summary>
    public static readonly TimeSpan IngestStoppingDrain = TimeSpan.FromSeconds(2);

    public static bool IsRequested(string[] args) => args.Contains(Switch, StringComparer.Ordinal);

    public static async Task<int> RunAsync(string[] args)
    {
        var app = Build(args.Where(a => a != Switch).ToArray());
        await app.RunAsync().ConfigureAwait(false);
        return 0;
    }

    public static WebApplication Build(string[] args)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args });
        AddLocalSettingsFile(builder.Configuration);
        // Quieter defaults than ASP.NET's: one line per outcome from the relay, not per request and per try.
        builder.Configuration.Sources.Insert(0, new Microsoft.Extensions.Configuration.Memory.MemoryConfigurationSource
        {
            InitialData = new Dictionary<string, string?>
            {
                ["Logging:LogLevel:Default"] = "Information",
                ["Logging:LogLevel:Microsoft.AspNetCore"] = "Warning",
                ["Logging:LogLevel:Polly"] = "Warning",
                ["Logging:LogLevel:System.Net.Http"] = "Warning",
            },
        });
        if (string.IsNullOrEmpty(builder.Configuration["urls"]))
        {
            builder.WebHost.UseUrls(DefaultUrl);
        }

        var services = builder.Services;
        services.AddSingleton(TimeProvider.System);
        services.AddKlaviyoOptions();
        services.AddKlaviyoTransform();
        services.AddKlaviyoClient();
        if (builder.Configuration.GetValue<bool>($"{KlaviyoOptions.SectionName}:{nameof(KlaviyoOptions.DryRun)}"))
        {
            services.AddHttpClient<KlaviyoClient>().ConfigurePrimaryHttpMessageHandler(() => new DryRunKlaviyoHandler(Console.Out));
        }
        services.AddRelayOptions();
        services.TryAddSingleton(new RetrySchedule());
        services.AddSingleton<RelayProcessor>();
        services.AddIngestHandler();
        // While stopping: 503 + Retry-After for a short drain before the listener closes (spec section 7).
        services.AddSingleton<IHostedService>(sp => ActivatorUtilities.CreateInstance<IngestStopping>(sp, IngestStoppingDrain));
        // Kestrel answers its own header limits with an empty 431; keep its limits above the relay's so the relay's
        // problem document answers first (HttpProblemAnswers).
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.Limits.MaxRequestHeadersTotalSize = 2 * HttpProblemAnswers.MaxHeaderBytes;
            kestrel.Limits.MaxRequestHeaderCount = 2 * HttpProblemAnswers.MaxHeaderCount;
        });

        services.AddOptions<LocalOptions>().BindConfiguration(LocalOptions.SectionName).ValidateOnStart();
        services.AddSingleton<IValidateOptions<LocalOptions>, LocalOptionsValidator>();
        services.AddSingleton<InProcessEventQueue>();
        services.AddSingleton<IEventQueue>(sp => sp.GetRequiredService<InProcessEventQueue>());
        services.AddSingleton(sp => new DeadLetterFile(sp.GetRequiredService<IOptions<LocalOptions>>().Value.DeadLetterPath, sp.GetRequiredService<TimeProvider>()));
        services.AddSingleton<LocalCounters>();
        services.AddSingleton<ConfigurationHealth>();
        services.AddLocalTelemetry(builder.Configuration);
        services.AddHostedService<LocalRelayWorker>();
        services.Configure<HostOptions>(o => o.ShutdownTimeout = builder.Configuration.GetValue($"{LocalOptions.SectionName}:{nameof(LocalOptions.ShutdownGrace)}", TimeSpan.FromSeconds(20)) + TimeSpan.FromSeconds(15));

        var app = builder.Build();
        app.UseProblemAnswers();
        // No function keys in local mode; the signing secret (Ingest:SigningSecret) still applies in the handler.
        app.MapPost("/api/events", context => IngestAsync(context, routeType: null));
        app.MapPost("/api/v1/batch", context => IngestAsync(context, routeType: null));
        app.MapPost("/api/" + IngestFunction.TypedRoute, context => IngestAsync(context, (string?)context.Request.RouteValues["type"]));
        app.MapGet("/api/health", context =>
        {
            var (status, body) = HealthFunction.Describe(context.RequestServices.GetRequiredService<ConfigurationHealth>().Check(includeServiceBus: false));
            context.Response.StatusCode = status;
            return context.Response.WriteAsJsonAsync(body);
        });
        return app;
    }

    private static async Task IngestAsync(HttpContext context, string? routeType)
    {
        var handler = context.RequestServices.GetRequiredService<IngestHandler>();
        var result = await handler.HandleAsync(IngestFunction.ToIngestRequest(context.Request, routeType), context.RequestAborted).ConfigureAwait(false);
        await IngestActionResult.WriteAsync(context, result).ConfigureAwait(false);
    }

    /// <summary>Reads <c>Values</c> of a <c>local.settings.json</c> (the Core Tools file) from the working or app folder,
    /// below every other source, so one settings file serves both ways of running locally.</summary>
    private static void AddLocalSettingsFile(ConfigurationManager configuration)
    {
        var path = new[] { Directory.GetCurrentDirectory(), Path.Combine(Directory.GetCurrentDirectory(), "Klaviyo.Functions"), AppContext.BaseDirectory }
            .Select(dir => Path.Combine(dir, "local.settings.json"))
            .FirstOrDefault(File.Exists);
        if (path is null)
        {
            return;
        }
        using var document = JsonDocument.Parse(File.ReadAllBytes(path), new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
        if (!document.RootElement.TryGetProperty("Values", out var values) || values.ValueKind != JsonValueKind.Object)
        {
            return;
        }
        var settings = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
        foreach (var property in values.EnumerateObject())
        {
            if (!property.Name.StartsWith("_comment", StringComparison.Ordinal) && property.Value.ValueKind is JsonValueKind.String or JsonValueKind.Number or JsonValueKind.True or JsonValueKind.False)
            {
                settings[property.Name.Replace("__", ":", StringComparison.Ordinal)] = property.Value.ToString();
            }
        }
        configuration.Sources.Insert(0, new Microsoft.Extensions.Configuration.Memory.MemoryConfigurationSource { InitialData = settings });
    }
}
