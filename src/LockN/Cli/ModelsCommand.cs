using System.CommandLine;
namespace LockN.Cli;
internal static class ModelsCommand { public static Command Create(IConfiguration c) { _ = c; return new Command("models"); } }
