import java.nio.charset.StandardCharsets;
import org.apache.kafka.clients.producer.internals.BuiltInPartitioner;

public class KeyPartitions {
    public static void main(String[] args) {
        String[] keys = {"m-ana", "m-ben", "m-cal", "m-0", "m-1", "m-2", "m-3", "m-17", "m-199",
                         "g-3f2a9c", "auth0|abc", "g-\u00fcn\u00efcode", ""};
        int[] counts = {1, 3, 4, 12};
        for (String k : keys) {
            StringBuilder sb = new StringBuilder();
            for (int n : counts) {
                sb.append(BuiltInPartitioner.partitionForKey(k.getBytes(StandardCharsets.UTF_8), n)).append(' ');
            }
            System.out.println("\"" + k + "\" " + sb);
        }
    }
}
