from runtime.serve.stops import StopText


def feed_all(stops, pieces):
    s = StopText(stops)
    sent, stopped = [], False
    for piece in pieces:
        text, stopped = s.feed(piece)
        sent.append(text)
        if stopped:
            break
    return sent + ([] if stopped else [s.flush()]), stopped


def test_text_before_the_stop_string_only():
    sent, stopped = feed_all(["END"], ["abc E", "N", "D tail"])
    assert "".join(sent) == "abc " and stopped
    assert sent[0] == "abc "  # "E" held back: it may begin "END"


def test_a_false_start_is_released_and_the_earliest_stop_wins():
    sent, stopped = feed_all(["END", "xy"], ["one E", "Nd two ", "x", "y three END"])
    assert "".join(sent) == "one ENd two " and stopped
    sent, stopped = feed_all(["\n\n"], ["a\n", "b"])
    assert sent == ["a", "\nb", ""] and not stopped
