using Klaviyo.Functions.Ingest;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Azure.Functions.Worker;
using Microsoft.Extensions.DependencyInjection;

namespace Klaviyo.Functions.Privacy;

/// <summary>
/// <c>POST /api/privacy/deletions</c> with the host's master key (spec 11): queues one deletion per request of
/// <c>{"requests": [{"userId"?, "email"?, "phone"?, "profileId"?}]}</c> and answers 202 with the message ids.
/// </summary>
public sealed class PrivacyDeletionsFunction
{
    private readonly DeletionRequestHandler handler;

    /// <summary>The worker activates function classes through their public constructors; the collaborators are
    /// internal, so it resolves them here.</summary>
    public PrivacyDeletionsFunction(IServiceProvider services)
        : this(services.GetRequiredService<DeletionRequestHandler>())
    {
    }

    internal PrivacyDeletionsFunction(DeletionRequestHandler handler) => this.handler = handler;

    public const string Name = "PrivacyDeletions";

    public const string Route = "privacy/deletions";

    [Function(Name)]
    public async Task<IActionResult> RunAsync(
        [HttpTrigger(AuthorizationLevel.Admin, "post", Route = Route)] HttpRequest request,
        CancellationToken cancellationToken) =>
        new IngestActionResult(await handler.HandleAsync(request.Body, cancellationToken).ConfigureAwait(false));
}
