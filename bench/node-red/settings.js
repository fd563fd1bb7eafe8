// Node-RED settings for the benchmark: headless (no editor, no HTTP server), nothing sent
// anywhere, serial port retried quickly. Started by bench/run.py with
//   node bench/.node-red/node_modules/node-red/red.js --userDir bench/.node-red \
//        --settings bench/node-red/settings.js bench/node-red/flow.json
module.exports = {
    httpAdminRoot: false,  // with httpNodeRoot false too, Node-RED starts no HTTP server
    httpNodeRoot: false,
    disableEditor: true,
    credentialSecret: false,
    serialReconnectTime: 1000,
    logging: {
        console: { level: "info", metrics: false, audit: false },
    },
    telemetry: { enabled: false },
    diagnostics: { enabled: false, ui: false },
    runtimeState: { enabled: false, ui: false },
    externalModules: {
        autoInstall: false,
        palette: { allowInstall: false },
        modules: { allowInstall: false },
    },
    editorTheme: { projects: { enabled: false } },
};
