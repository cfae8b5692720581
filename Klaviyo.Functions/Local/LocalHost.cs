using System.Text.Json;
using Klaviyo.Functions.Telemetry;
using Klaviyo.Functions.Diagnostics;
using Klaviyo.Functions.Health;
using Klaviyo.Functions.Ingest;
using Klaviyo.Functions.Klaviyo;
using Klaviyo.Functions.Queue;
using Klaviyo.Functions.Relay;
using Klaviyo.Functions.Transform;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Klaviyo.Functions.Local;

/// <summary>
/// Local mode (spec section 9): the same ingest handler, transform, Klaviyo client and relay processor, hosted in one
/// ASP.NET Core process with a durable SQLite queue (<see cref="SqliteEventQueue"/>) — no Azure, Docker or Core Tools.
/// </summary>
internal static partial class LocalHost
{
    public const string Switch = "--local";
    public const string DefaultUrl = "http://localhost:7071";

    /// <summary>How long a stopping app keeps answering new ingest requests 503 before closing its listener.</summary>
    public static readonly TimeSpan IngestStoppingDrain = TimeSpan.FromSeconds(2);

    public static bool IsRequested(string[] args) => args.Contains(Switch, StringComparer.Ordinal);

    public static async Task<int> RunAsync(string[] args)
    {
        WebApplication app;
        try
        {
            app = Build(args.Where(a => a != Switch).ToArray());
        }
        catch (LocalStartupException ex)
        {
            await Console.Error.WriteLineAsync(ex.Message).ConfigureAwait(false);
            return 1;
        }
        catch (OptionsValidationException ex)
        {
            await Console.Error.WriteLineAsync(string.Join(Environment.NewLine, ex.Failures)).ConfigureAwait(false);
            return 1;
        }
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

        builder.Services.AddRelayCore();
        builder.Services.AddLocalQueue();
        builder.Services.AddLocalTelemetry(builder.Configuration);
        // While stopping: 503 + Retry-After for a short drain before the listener closes (spec section 7).
        builder.Services.AddSingleton<IHostedService>(sp => ActivatorUtilities.CreateInstance<IngestStopping>(sp, IngestStoppingDrain));
        // Kestrel answers its own header limits with an empty 431; keep its limits above the relay's so the relay's
        // problem document answers first (HttpProblemAnswers).
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.Limits.MaxRequestHeadersTotalSize = 2 * HttpProblemAnswers.MaxHeaderBytes;
            kestrel.Limits.MaxRequestHeaderCount = 2 * HttpProblemAnswers.MaxHeaderCount;
        });

        var app = builder.Build();
        app.UseProblemAnswers();
        var local = app.Services.GetRequiredService<IOptions<LocalOptions>>().Value;
        var keys = LocalKeys.For(local, app.Services.GetRequiredService<IOptions<IngestOptions>>().Value, builder.Configuration["urls"] ?? DefaultUrl);
        var queue = app.Services.GetRequiredService<SqliteEventQueue>(); // opens the database now: a bad path stops start-up
        _ = app.Services.GetRequiredService<DeadLetterFile>(); // and checks the dead-letter file's place
        if (queue.LeasesReleasedAtOpen > 0)
        {
            LogLeasesReleased(app.Logger, queue.LeasesReleasedAtOpen, queue.Path);
        }

        _ = app.Services.GetRequiredService<LocalActivity>(); // listens from the start, so the page's rates miss nothing
        var localStatus = app.Services.GetRequiredService<LocalStatus>();
        app.MapLocalStatus(keys);
        // The function app's routes, from the function classes' own constants.
        foreach (var (route, typeValue) in IngestFunction.Routes)
        {
            app.MapPost("/api/" + route, context => IngestAsync(context, keys, typeValue is null ? null : (string?)context.Request.RouteValues[typeValue]));
        }
        app.MapGet("/api/" + HealthFunction.Route, context =>
        {
            var (status, body) = HealthFunction.Describe(context.RequestServices.GetRequiredService<ConfigurationHealth>().Check(includeServiceBus: false));
            var answer = JsonSerializer.SerializeToNode(body)!.AsObject();
            answer["backlog"] = LocalStatus.BacklogJson(localStatus.Backlog()); // the same numbers as /api/status
            context.Response.StatusCode = status;
            return context.Response.WriteAsJsonAsync(answer);
        });
        if (keys.Admin is not null)
        {
            // Absent without Local:AdminKey; with it, the same replay and deletion routes as Azure's admin-level functions.
            app.MapPost("/api/" + ReplayDeadLettersFunction.Route, context => ReplayAsync(context, keys));
            app.MapPost("/api/" + Privacy.PrivacyDeletionsFunction.Route, context => DeletionsAsync(context, keys));
        }
        return app;
    }

    private static async Task IngestAsync(HttpContext context, LocalKeys keys, string? routeType)
    {
        if (!keys.AllowsIngest(context.Request))
        {
            await LocalKeys.WriteUnauthorizedAsync(context).ConfigureAwait(false);
            return;
        }
        var handler = context.RequestServices.GetRequiredService<IngestHandler>();
        var result = await handler.HandleAsync(IngestFunction.ToIngestRequest(context.Request, routeType), context.RequestAborted).ConfigureAwait(false);
        await IngestActionResult.WriteAsync(context, result).ConfigureAwait(false);
    }

    private static async Task ReplayAsync(HttpContext context, LocalKeys keys)
    {
        if (!keys.AllowsAdmin(context.Request))
        {
            await LocalKeys.WriteUnauthorizedAsync(context).ConfigureAwait(false);
            return;
        }
        var function = ActivatorUtilities.CreateInstance<ReplayDeadLettersFunction>(context.RequestServices);
        var result = await function.RunAsync(context.Request, context.RequestAborted).ConfigureAwait(false);
        var (status, value, contentType) = result switch
        {
            OkObjectResult ok => (StatusCodes.Status200OK, ok.Value, "application/json"),
            ObjectResult other => (other.StatusCode ?? StatusCodes.Status400BadRequest, other.Value, other.Value is ProblemDetails ? "application/problem+json" : "application/json"),
            _ => throw new InvalidOperationException($"Unexpected replay result {result.GetType().Name}."),
        };
        context.Response.StatusCode = status;
        await context.Response.WriteAsJsonAsync(value, value?.GetType() ?? typeof(object), options: null, contentType, context.RequestAborted).ConfigureAwait(false);
    }

    private static async Task DeletionsAsync(HttpContext context, LocalKeys keys)
    {
        if (!keys.AllowsAdmin(context.Request))
        {
            await LocalKeys.WriteUnauthorizedAsync(context).ConfigureAwait(false);
            return;
        }
        var handler = context.RequestServices.GetRequiredService<Privacy.DeletionRequestHandler>();
        await IngestActionResult.WriteAsync(context, await handler.HandleAsync(context.Request.Body, context.RequestAborted).ConfigureAwait(false)).ConfigureAwait(false);
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

    [LoggerMessage(EventId = 5006, Level = LogLevel.Warning, Message = "{Count} event(s) leased by a previous relay process that ended without settling them are handed out again now ({Path}); any that were in flight may reach Klaviyo twice (unique_id keeps one)")]
    private static partial void LogLeasesReleased(ILogger logger, long count, string path);
}
