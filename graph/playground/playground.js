// Skiff's GraphiQL: same-origin assets only, and the Authorization header
// kept in memory (GraphiQL's "Persist headers" setting opts in to storing it).
(function () {
  'use strict';
  var fetcher = GraphiQL.createFetcher({ url: location.origin + '/graphql' });
  ReactDOM.createRoot(document.getElementById('graphiql')).render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      isHeadersEditorEnabled: true,
      shouldPersistHeaders: false,
      defaultHeaders: '{\n  "Authorization": "Bearer "\n}',
      inputValueDeprecation: true
    })
  );
})();
