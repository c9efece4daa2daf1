// A grpc-java client for benches/flavors/crosscheck.py: the same calls as client.py.
//
//   java -cp JARS Client.java ADDR SERVICE_CONFIG N SPACING_MS DEADLINE_S
import com.google.gson.Gson;
import io.grpc.CallOptions;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.MethodDescriptor;
import io.grpc.Status;
import io.grpc.stub.ClientCalls;
import io.grpc.stub.StreamObserver;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.ConcurrentSkipListMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

public class Client {
  static final MethodDescriptor.Marshaller<byte[]> BYTES = new MethodDescriptor.Marshaller<>() {
    public InputStream stream(byte[] value) { return new ByteArrayInputStream(value); }
    public byte[] parse(InputStream stream) {
      try { return stream.readAllBytes(); } catch (IOException e) { throw new RuntimeException(e); }
    }
  };

  static byte[] request(String id) {
    byte[] raw = id.getBytes(StandardCharsets.UTF_8);
    byte[] out = new byte[raw.length + 2];
    out[0] = 0x0a;
    out[1] = (byte) raw.length;
    System.arraycopy(raw, 0, out, 2, raw.length);
    return out;
  }

  @SuppressWarnings("unchecked")
  public static void main(String[] args) throws Exception {
    String addr = args[0];
    Map<String, ?> config = new Gson().fromJson(Files.readString(Path.of(args[1])), Map.class);
    int n = Integer.parseInt(args[2]);
    double spacingMs = Double.parseDouble(args[3]);
    long deadlineMs = (long) (Double.parseDouble(args[4]) * 1000);
    ManagedChannel channel = ManagedChannelBuilder.forTarget(addr).usePlaintext()
        .defaultServiceConfig(config).disableServiceConfigLookUp().enableRetry().build();
    MethodDescriptor<byte[], byte[]> method = MethodDescriptor.<byte[], byte[]>newBuilder()
        .setType(MethodDescriptor.MethodType.UNARY)
        .setFullMethodName("resilbench.v1.Backend/Call")
        .setRequestMarshaller(BYTES).setResponseMarshaller(BYTES).build();
    ClientCalls.blockingUnaryCall(channel, method, CallOptions.DEFAULT
        .withDeadlineAfter(5, TimeUnit.SECONDS), request("warmup"));
    ConcurrentSkipListMap<Integer, String> results = new ConcurrentSkipListMap<>();
    CountDownLatch done = new CountDownLatch(n);
    long start = System.nanoTime();
    for (int i = 0; i < n; i++) {
      long due = start + (long) (i * spacingMs * 1_000_000);
      long wait = due - System.nanoTime();
      if (wait > 0) { TimeUnit.NANOSECONDS.sleep(wait); }
      final int id = i;
      final long t0 = System.nanoTime();
      ClientCalls.asyncUnaryCall(
          channel.newCall(method, CallOptions.DEFAULT.withDeadlineAfter(deadlineMs, TimeUnit.MILLISECONDS)),
          request(String.valueOf(i)),
          new StreamObserver<byte[]>() {
            void finish(String status) {
              double ms = (System.nanoTime() - t0) / 1e6;
              results.put(id, String.format("{\"id\": %d, \"status\": \"%s\", \"ms\": %.3f}", id, status, ms));
              done.countDown();
            }
            public void onNext(byte[] value) {}
            public void onError(Throwable t) { finish(Status.fromThrowable(t).getCode().name()); }
            public void onCompleted() { finish("OK"); }
          });
    }
    done.await(deadlineMs + (long) (n * spacingMs) + 30_000, TimeUnit.MILLISECONDS);
    results.values().forEach(System.out::println);
    channel.shutdownNow();
  }
}
