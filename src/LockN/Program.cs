using System.CommandLine;
using LockN.Cli;

// Every command reads its settings as serve does (LockNConfiguration), through CommandHost or LockNServer.Build.
var root = new RootCommand("LockN: a self-hosted, OpenAI-compatible speech service")
{
    ServeCommand.Create(),
    TranscribeCommand.Create(),
    ClassifyCommand.Create(),
    StreamCommand.Create(),
    ModelsCommand.Create(),
    KeysCommand.Create(),
    UsageCommand.Create(),
    BackendsCommand.Create(),
    WorkerCommand.Create(),
};
return await root.Parse(args).InvokeAsync();
