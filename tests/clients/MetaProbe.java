// What DBeaver, DataGrip and Metabase ask of pgjdbc's DatabaseMetaData beyond tables and
// columns: keys, indexes, functions and types. Each call prints its row count; any
// exception fails the probe. Run by tests/it/serve_clients.rs:
//   java -cp /usr/share/java/postgresql.jar tests/clients/MetaProbe.java JDBC_URL USER PASSWORD
import java.sql.*;

public class MetaProbe {
    interface Call { ResultSet run(DatabaseMetaData md) throws SQLException; }

    static void count(String label, DatabaseMetaData md, Call call) throws SQLException {
        int n = 0;
        try (ResultSet rs = call.run(md)) {
            while (rs.next()) n++;
        }
        System.out.println(label + " " + n);
    }

    public static void main(String[] args) throws Exception {
        try (Connection c = DriverManager.getConnection(args[0], args[1], args[2])) {
            DatabaseMetaData md = c.getMetaData();
            count("PRIMARY_KEYS", md, m -> m.getPrimaryKeys("cloudflare", "user", "tokens"));
            count("INDEX_INFO", md, m -> m.getIndexInfo("cloudflare", "user", "tokens", false, true));
            count("IMPORTED_KEYS", md, m -> m.getImportedKeys("cloudflare", "user", "tokens"));
            count("EXPORTED_KEYS", md, m -> m.getExportedKeys("cloudflare", "user", "tokens"));
            count("BEST_ROW", md, m -> m.getBestRowIdentifier("cloudflare", "user", "tokens", DatabaseMetaData.bestRowSession, true));
            count("FUNCTIONS", md, m -> m.getFunctions("cloudflare", null, "%"));
            count("PROCEDURES", md, m -> m.getProcedures("cloudflare", null, "%"));
            try (ResultSet rs = md.getTypeInfo()) {
                int n = 0;
                boolean timestamptz = false;
                while (rs.next()) {
                    n++;
                    timestamptz |= "timestamptz".equals(rs.getString("TYPE_NAME"));
                }
                System.out.println("TYPE_INFO " + n + " timestamptz=" + timestamptz);
            }
        }
    }
}
