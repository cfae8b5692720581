namespace Klaviyo.Functions.Diagnostics;

/// <summary>Reads <c>APPLICATIONINSIGHTS_AUTHENTICATION_STRING</c> (<c>ClientId=&lt;id&gt;;Authorization=AAD</c>), the
/// setting the Functions host itself honours, so that host and worker authenticate the same way.</summary>
public static class TelemetryAuthentication
{
    /// <summary>True when the string asks for Entra (AAD) auth; <paramref name="clientId"/> is the user-assigned
    /// identity's client ID, or null for the system-assigned identity.</summary>
    public static bool TryParse(string? value, out string? clientId)
    {
        clientId = null;
        var aad = false;
        foreach (var part in (value ?? "").Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var pair = part.Split('=', 2, StringSplitOptions.TrimEntries);
            if (pair.Length != 2)
            {
                continue;
            }
            if (pair[0].Equals("Authorization", StringComparison.OrdinalIgnoreCase))
            {
                aad = pair[1].Equals("AAD", StringComparison.OrdinalIgnoreCase);
            }
            else if (pair[0].Equals("ClientId", StringComparison.OrdinalIgnoreCase) && pair[1].Length > 0)
            {
                clientId = pair[1];
            }
        }
        if (!aad)
        {
            clientId = null;
        }
        return aad;
    }
}
