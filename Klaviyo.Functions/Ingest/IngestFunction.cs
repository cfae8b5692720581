using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Azure.Functions.Worker;
using Microsoft.Extensions.DependencyInjection;

namespace Klaviyo.Functions.Ingest;

/// <summary>The HTTP front door (spec section 7): translates HttpRequest to <see cref="IngestRequest"/> and back.</summary>
public sealed class IngestFunction
{
    private readonly IngestHandler handler;

    /// <summary>The worker activates function classes through their public constructors; the collaborators are
    /// internal, so it resolves them here.</summary>
    public IngestFunction(IServiceProvider services)
        : this(services.GetRequiredService<IngestHandler>())
    {
    }

    internal IngestFunction(IngestHandler handler) => this.handler = handler;

    public const string EventsFunctionName = "Ingest";
    public const string BatchFunctionName = "IngestBatch";
    public const string TypedFunctionName = "IngestTyped";

    /// <summary><c>POST /api/events</c>: one event, an array of events or <c>{"batch": [...]}</c>.</summary>
    [Function(EventsFunctionName)]
    public Task<IActionResult> Events(
        [HttpTrigger(AuthorizationLevel.Function, "post", Route = EventsRoute)] HttpRequest request) =>
        RunAsync(request, routeType: null);

    /// <summary><c>POST /api/v1/batch</c>, RudderStack's batch endpoint.</summary>
    [Function(BatchFunctionName)]
    public Task<IActionResult> Batch(
        [HttpTrigger(AuthorizationLevel.Function, "post", Route = BatchRoute)] HttpRequest request) =>
        RunAsync(request, routeType: null);

    /// <summary><c>POST /api/v1/{type}</c>: the route gives <c>type</c> to events that have none.</summary>
    [Function(TypedFunctionName)]
    public Task<IActionResult> Typed(
        [HttpTrigger(AuthorizationLevel.Function, "post", Route = TypedRoute)] HttpRequest request,
        string type) =>
        RunAsync(request, type);

    private async Task<IActionResult> RunAsync(HttpRequest request, string? routeType)
    {
        var result = await handler.HandleAsync(ToIngestRequest(request, routeType), request.HttpContext.RequestAborted);
        return new IngestActionResult(result);
    }

    /// <summary>The parts of an HTTP request the handler decides on (shared with local mode).</summary>
    internal static IngestRequest ToIngestRequest(HttpRequest request, string? routeType)
    {
        var signature = request.Headers[SignatureVerifier.HeaderName];
        return new IngestRequest(request.Body, request.ContentType, request.ContentLength, signature.Count == 0 ? null : signature.ToString(), routeType);
    }

    public const string EventsRoute = "events";
    public const string BatchRoute = "v1/batch";

    /// <summary>The route template of <c>/api/v1/{type}</c>. Any segment matches, so an unknown type reaches the handler
    /// and gets its 404 problem document (<c>v1/batch</c> is a literal route and wins).</summary>
    public const string TypedRoute = "v1/{type}";

    /// <summary>The ingest routes (under <c>/api/</c>) and the route value that names the type, if any: the function
    /// attributes above use the same constants, and local mode maps this table, so both hosts answer the same paths.</summary>
    internal static readonly IReadOnlyList<(string Route, string? TypeValue)> Routes =
        [(EventsRoute, null), (BatchRoute, null), (TypedRoute, "type")];
}
