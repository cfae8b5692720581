using System.Globalization;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Azure.Functions.Worker;
using Microsoft.Extensions.DependencyInjection;

namespace Klaviyo.Functions.Relay;

/// <summary>
/// <c>POST /api/dead-letters/replay?max=100&amp;reason=KlaviyoRejected</c> with the host's master key: moves up to
/// <c>max</c> dead letters (optionally one reason only) back to the queue with a fresh attempt count.
/// </summary>
public sealed class ReplayDeadLettersFunction
{
    private readonly DeadLetterReplayer replayer;

    /// <summary>The worker activates function classes through their public constructors; the collaborators are
    /// internal, so it resolves them here.</summary>
    public ReplayDeadLettersFunction(IServiceProvider services)
        : this(services.GetRequiredService<DeadLetterReplayer>())
    {
    }

    internal ReplayDeadLettersFunction(DeadLetterReplayer replayer) => this.replayer = replayer;

    public const string Name = "ReplayDeadLetters";

    public const string Route = "dead-letters/replay";
    public const int DefaultMax = 100;

    /// <summary>The answer: how many moved, how many were looked at, each moved event, and why the replay stopped
    /// early if it did (then the status is 503: run it again for the rest).</summary>
    internal sealed record Response(int Moved, int Scanned, string? Reason, IReadOnlyList<ReplayedMessage> Messages, string? Interrupted = null);

    [Function(Name)]
    public async Task<IActionResult> RunAsync(
        [HttpTrigger(AuthorizationLevel.Admin, "post", Route = Route)] HttpRequest request,
        CancellationToken cancellationToken)
    {
        var max = DefaultMax;
        if (request.Query.TryGetValue("max", out var maxValue)
            && (!int.TryParse(maxValue.ToString(), NumberStyles.None, CultureInfo.InvariantCulture, out max) || max < 1 || max > DeadLetterReplayer.MaxCount))
        {
            return Problem("max", $"max must be a whole number from 1 to {DeadLetterReplayer.MaxCount}");
        }

        string? reason = null;
        if (request.Query.TryGetValue("reason", out var reasonValue))
        {
            reason = reasonValue.ToString().Trim();
            if (reason.Length is 0 or > 256)
            {
                return Problem("reason", "reason must be a dead-letter reason such as KlaviyoRejected (1–256 characters)");
            }
        }

        var result = await replayer.ReplayAsync(max, reason, cancellationToken).ConfigureAwait(false);
        var response = new Response(result.Moved.Count, result.Scanned, reason, result.Moved, result.Interrupted);
        return result.Interrupted is null ? new OkObjectResult(response) : new ObjectResult(response) { StatusCode = StatusCodes.Status503ServiceUnavailable };
    }

    private static BadRequestObjectResult Problem(string field, string message) =>
        new(new ProblemDetails
        {
            Type = "https://www.rfc-editor.org/rfc/rfc9110#section-15.5.1",
            Title = "Invalid replay request",
            Status = StatusCodes.Status400BadRequest,
            Detail = message,
            Extensions = { ["field"] = field },
        })
        { ContentTypes = { "application/problem+json" } };
}
