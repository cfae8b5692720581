namespace Klaviyo.Functions.Settings;

/// <summary>App Service Key Vault references (<c>@Microsoft.KeyVault(SecretUri=…)</c>), in one place.</summary>
internal static class KeyVaultReference
{
    /// <summary>How every Key Vault reference starts.</summary>
    public const string Prefix = "@Microsoft.KeyVault(";

    /// <summary>True when App Service left the literal reference in the setting: not resolved yet (a first provision
    /// starts the app seconds before its references resolve) or not resolvable (missing role, deleted secret).</summary>
    public static bool IsUnresolved(string? value) =>
        value?.StartsWith(Prefix, StringComparison.OrdinalIgnoreCase) == true;
}
