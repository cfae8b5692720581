using System.Net;
using System.Text.RegularExpressions;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Klaviyo.Functions.Diagnostics;

/// <summary>
/// Function keys sent in the URL (<c>?code=</c>, the Azure convention that local mode follows) never reach a log, at any
/// level. ASP.NET Core's request-start and request-end lines print the query string at Information, and Kestrel's
/// bad-request lines print the request line: a common debugging step (<c>Logging__LogLevel__Microsoft.AspNetCore</c> at
/// Information) would write every sender's key. The app's <see cref="ILoggerFactory"/> is wrapped, so every logger of
/// every category passes here; filtering stays with the framework's factory and its providers.
/// </summary>
internal static partial class LogRedaction
{
    public const string Mask = "***";

    /// <summary>The query parameter that carries a key. ASP.NET Core matches it case-insensitively after percent-decoding,
    /// so <c>?CODE=</c> and <c>?co%64e=</c> are keys too.</summary>
    private const string KeyParameter = "code";

    [GeneratedRegex("""(?<lead>[?&;](?<name>[^=&#?\s"'<>]+)=)(?<value>[^&#\s"'<>]*)""", RegexOptions.CultureInvariant)]
    private static partial Regex QueryParameter();

    /// <summary><paramref name="text"/> with the value of every key parameter replaced by <see cref="Mask"/>.</summary>
    public static string Redact(string text) =>
        text.Contains('=', StringComparison.Ordinal) ? QueryParameter().Replace(text, static m => IsKeyName(m.Groups["name"].Value) ? m.Groups["lead"].Value + Mask : m.Value) : text;

    public static bool NeedsRedaction(string? text) => text is not null && !string.Equals(Redact(text), text, StringComparison.Ordinal);

    private static bool IsKeyName(string name)
    {
        if (string.Equals(name, KeyParameter, StringComparison.OrdinalIgnoreCase))
        {
            return true;
        }
        if (!name.Contains('%', StringComparison.Ordinal) && !name.Contains('+', StringComparison.Ordinal))
        {
            return false;
        }
        return string.Equals(WebUtility.UrlDecode(name).Trim(), KeyParameter, StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>Wraps the app's <see cref="ILoggerFactory"/> (adding logging first when absent, so the order of
    /// registration does not matter: <c>AddLogging</c> only adds a factory when none is registered).</summary>
    public static IServiceCollection AddKeyRedactingLogs(this IServiceCollection services)
    {
        if (services.Any(d => d.ServiceType == typeof(RedactingLoggerFactory)))
        {
            return services; // wrapped already
        }
        services.AddSingleton<RedactingLoggerFactory>(sp => (RedactingLoggerFactory)sp.GetRequiredService<ILoggerFactory>());
        if (!services.Any(d => d.ServiceType == typeof(ILoggerFactory)))
        {
            services.AddLogging();
        }
        for (var i = 0; i < services.Count; i++)
        {
            var descriptor = services[i];
            if (descriptor.ServiceType != typeof(ILoggerFactory) || descriptor.IsKeyedService)
            {
                continue;
            }
            services[i] = ServiceDescriptor.Singleton<ILoggerFactory>(sp => new RedactingLoggerFactory(Inner(sp, descriptor), owned: descriptor.ImplementationInstance is null));
        }
        return services;
    }

    private static ILoggerFactory Inner(IServiceProvider services, ServiceDescriptor descriptor) =>
        descriptor.ImplementationInstance as ILoggerFactory
        ?? descriptor.ImplementationFactory?.Invoke(services) as ILoggerFactory
        ?? (ILoggerFactory)ActivatorUtilities.CreateInstance(services, descriptor.ImplementationType!);
}

/// <summary>Hands out loggers that redact keys (<see cref="LogRedaction"/>) before any provider sees a line.</summary>
internal sealed class RedactingLoggerFactory(ILoggerFactory inner, bool owned) : ILoggerFactory
{
    /// <summary>The framework's factory, which filters and hands lines to the providers.</summary>
    internal ILoggerFactory Inner => inner;

    public ILogger CreateLogger(string categoryName) => new RedactingLogger(inner.CreateLogger(categoryName));

    public void AddProvider(ILoggerProvider provider) => inner.AddProvider(provider);

    public void Dispose()
    {
        if (owned)
        {
            inner.Dispose();
        }
    }
}

/// <summary>Passes a line through untouched unless one of its values (or its exception's message) holds a key; then
/// the provider gets the values, the message and the exception with the key masked.</summary>
internal sealed class RedactingLogger(ILogger inner) : ILogger
{
    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => inner.BeginScope(state);

    public bool IsEnabled(LogLevel logLevel) => inner.IsEnabled(logLevel);

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        if (!inner.IsEnabled(logLevel))
        {
            return;
        }
        var exceptionHoldsKey = exception is not null && HoldsKey(exception);
        var values = state as IReadOnlyList<KeyValuePair<string, object?>>;
        if (!exceptionHoldsKey && values is not null && !values.Any(v => v.Key != "{OriginalFormat}" && LogRedaction.NeedsRedaction(AsText(v.Value))))
        {
            inner.Log(logLevel, eventId, state, exception, formatter);
            return;
        }
        var message = formatter(state, exception);
        if (!exceptionHoldsKey && values is null && !LogRedaction.NeedsRedaction(message))
        {
            inner.Log(logLevel, eventId, state, exception, formatter);
            return;
        }
        var redacted = new RedactedState(LogRedaction.Redact(message), values?.Select(Redacted).ToList() ?? []);
        inner.Log(logLevel, eventId, redacted, exceptionHoldsKey ? new RedactedException(exception!) : exception, static (s, _) => s.Message);
    }

    private static KeyValuePair<string, object?> Redacted(KeyValuePair<string, object?> value) =>
        value.Key != "{OriginalFormat}" && AsText(value.Value) is { } text && LogRedaction.NeedsRedaction(text)
            ? new(value.Key, LogRedaction.Redact(text))
            : value;

    /// <summary>Text a value may carry a URL in (a string, a <c>QueryString</c>, a <c>Uri</c>); numbers, times and the
    /// like cannot.</summary>
    private static string? AsText(object? value) => value switch
    {
        null => null,
        string s => s,
        IConvertible or DateTimeOffset or TimeSpan or Guid => null,
        _ => value.ToString(),
    };

    private static bool HoldsKey(Exception exception)
    {
        for (var e = exception; e is not null; e = e.InnerException)
        {
            if (LogRedaction.NeedsRedaction(e.Message) || (e is AggregateException aggregate && aggregate.InnerExceptions.Any(HoldsKey)))
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>The values a structured provider reads (OpenTelemetry, JSON console) and the message a text one prints.</summary>
    private sealed class RedactedState(string message, IReadOnlyList<KeyValuePair<string, object?>> values) : IReadOnlyList<KeyValuePair<string, object?>>
    {
        public string Message { get; } = message;

        public KeyValuePair<string, object?> this[int index] => values[index];

        public int Count => values.Count;

        public IEnumerator<KeyValuePair<string, object?>> GetEnumerator() => values.GetEnumerator();

        System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();

        public override string ToString() => Message;
    }
}

/// <summary>Stands in for an exception whose message held a key: its type, masked message and stack trace.</summary>
internal sealed class RedactedException(Exception original)
    : Exception($"{original.GetType().FullName}: {LogRedaction.Redact(original.Message)}", original.InnerException is { } inner ? new RedactedException(inner) : null)
{
    public override string? StackTrace { get; } = original.StackTrace;
}
