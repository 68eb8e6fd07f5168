// Simpul's GraphiQL: queries go to the URL this page was served from (so it works behind a
// reverse proxy under any path). A staff token goes in the Headers tab:
// {"Authorization": "Bearer <jwt>"}.
(function () {
  const url = window.location.href.split(/[?#]/)[0];
  const fetcher = GraphiQL.createFetcher({ url });
  const root = ReactDOM.createRoot(document.getElementById("graphiql"));
  root.render(
    React.createElement(GraphiQL, {
      fetcher,
      defaultEditorToolsVisibility: true,
      defaultQuery:
        "# Simpul: satu API GraphQL untuk data Kabupaten Trenggalek.\n" +
        "# Tekan Ctrl+Enter untuk menjalankan.\n\n{\n  regency {\n    name\n  }\n}\n",
    }),
  );
})();
